"""`python -m cnet.cni`: the plugin, as the `cnet-cni` script runs it."""

from . import main

main()
