"""Kernel access: netlink through pyroute2 (netlink.py, conntrack.py),
namespaces (netns.py, the standard library), sysctls through /proc/sys.

Netlink errors leave this package as cnet errors (see errors.py) with a
message naming the object. Modules here are imported where a kernel handle
is opened, so commands that only read the state file never load them (nor
pyroute2, which costs most of a command's start-up).
"""
