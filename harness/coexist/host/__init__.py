"""Layer 4, host: the lab (a Debian host in a box), its daemons, settings, libvirt networks,
firewall reading, containers, and the testbed that assembles all of it. Imports the layers below."""
