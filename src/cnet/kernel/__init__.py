"""Kernel access: netlink through pyroute2, sysctls through /proc/sys.

The only package that imports pyroute2 (about 0.2 s to import), so commands
that only read the state file never pay for it. Netlink errors leave this
package as cnet errors (see errors.py) with a message naming the object.
"""
