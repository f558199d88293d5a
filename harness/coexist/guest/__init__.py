"""Layer 5, guest: the libvirt domain, its SSH keys, the accelerator, the guest and its verbs.
Imports the layers below."""
