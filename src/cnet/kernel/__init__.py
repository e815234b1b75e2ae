"""Kernel access: netlink (nlsock.py, netlink.py, conntrack.py), namespaces,
sysctls through /proc/sys.

Netlink errors leave this package as cnet errors (see errors.py) with a
message naming the object. Modules here are imported where a kernel handle
is opened, so commands that only read the state file never load them.
"""
