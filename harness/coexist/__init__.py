"""coexist: does a libvirt NAT guest keep its outside connectivity next to Docker?"""

__version__ = "0.1.0"
