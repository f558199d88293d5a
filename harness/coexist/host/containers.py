"""Containers in the lab: a busybox base image imported from a rootfs tarball (no registry)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from coexist.base import interrupt, log
from coexist.host.lab import Lab
from coexist.images.containerimage import PAGE
from coexist.net.connectivity import http_get

if TYPE_CHECKING:
    from docker.models.containers import Container

BASE_IMAGE = "coexist/busybox:latest"
LABEL = "coexist"


def import_base_image(lab: Lab) -> None:
    """Import the busybox base image into the lab's dockerd (once per dockerd data root)."""
    client = lab.docker()
    if any(BASE_IMAGE in image.tags for image in client.images.list()):
        return
    if lab.container_image is None:
        raise RuntimeError(f"lab {lab.name} has no container image to import (Lab(container_image=...))")
    with log.step(f"docker import {BASE_IMAGE} (busybox {lab.container_image.version})"):
        client.api.import_image_from_data(lab.container_image.rootfs.read_bytes(),
                                          repository=BASE_IMAGE.split(":")[0],
                                          tag="latest", changes=["ENV PATH=/bin", 'CMD ["sh"]'])


def _web_server(lab: Lab, name: str, **where: Any) -> Container:
    """A busybox httpd container serving PAGE on port 80, back after a dockerd restart.

    Stopped by SIGKILL: httpd is the container's PID 1 and sets no SIGTERM handler, so the kernel
    ignores SIGTERM for it and every stop (a dockerd restart, a host's shutdown) would wait out
    Docker's stop timeout first (the figures: bench/results/README.md, "moved from comments")."""
    unless_stopped: Any = {"Name": "unless-stopped"}  # dockerd has it; types-docker's names lack it
    return lab.docker().containers.run(
        BASE_IMAGE, ["httpd", "-f", "-p", "80", "-h", "/www"], name=name, detach=True,
        labels={LABEL: lab.owner}, restart_policy=unless_stopped, stop_signal="SIGKILL", **where)


def run_web(lab: Lab, *, name: str, published_port: int) -> Container:
    """A container serving HTTP on `published_port`, published on all of the lab host's addresses."""
    import_base_image(lab)
    with log.step(f"container {name}: busybox httpd, published port {published_port}"):
        return _web_server(lab, name, ports={"80/tcp": published_port})



ISOLATED_NETWORKS = ("coexist-net-a", "coexist-net-b")   # the prober's, the server's
ISOLATED_SERVER = "coexist-isolated-server"


def run_isolated_server(lab: Lab) -> Container:
    """A web server on one user-defined bridge network, and a second network to probe it from.

    Docker keeps its bridge networks apart (DOCKER-ISOLATION-STAGE-1/2): a container on the
    other network must not reach the server, unless something has removed those rules.
    """
    import_base_image(lab)
    client = lab.docker()
    with log.step(f"Docker networks {' and '.join(ISOLATED_NETWORKS)}, a server on the second"):
        for network in ISOLATED_NETWORKS:
            client.networks.create(network, driver="bridge", labels={LABEL: lab.owner})
        return _web_server(lab, ISOLATED_SERVER, network=ISOLATED_NETWORKS[1])


def address(server: Container) -> str:
    """The isolated server's address on its network (not published: reachable only by routing)."""
    server.reload()
    return str(server.attrs["NetworkSettings"]["Networks"][ISOLATED_NETWORKS[1]]["IPAddress"])


def run_once(lab: Lab, command: str, network: str = "bridge") -> tuple[int, str]:
    """A one-shot container on `network` running `command`: its exit status and output (the base
    image imported already: import_base_image)."""
    import docker.errors

    try:
        output = lab.docker().containers.run(BASE_IMAGE, ["sh", "-c", command], remove=True, network=network,
                                             labels={LABEL: lab.owner}, stderr=True)
    except docker.errors.ContainerError as error:
        said = error.stderr or b""
        return error.exit_status, said.decode(errors="replace") if isinstance(said, bytes) else said
    return 0, bytes(output).decode(errors="replace")


def reaches_across(lab: Lab, server: Container) -> bool:
    """Does a container on the other network get the server's page over HTTP?

    Asked by a one-shot container on the first network, which has nothing else running in it.
    """
    where = address(server)
    status, output = run_once(lab, http_get(where), ISOLATED_NETWORKS[0])
    reached = status == 0 and PAGE.decode() in output
    log.info(f"container on {ISOLATED_NETWORKS[0]} -> {where}:80 on {ISOLATED_NETWORKS[1]}: "
             f"{'REACHED' if reached else 'blocked'}")
    return reached


def egress(lab: Lab, host: str, port: int, body: str) -> dict[str, bool]:
    """Does a container reach the outside (an HTTP GET of `host`:`port` answered with `body`),
    on Docker's default bridge and, where the lab has them, on a user-defined network? By
    network; one-shot containers, at once."""
    networks = ["bridge"]
    if any(n.name == ISOLATED_NETWORKS[0] for n in lab.docker().networks.list(names=[ISOLATED_NETWORKS[0]])):
        networks.append(ISOLATED_NETWORKS[0])
    request = http_get(host, port)

    def fetches(network: str) -> bool:
        status, output = run_once(lab, request, network)
        return status == 0 and body in output

    import_base_image(lab)   # once, before the containers start at once
    with interrupt.Pool(len(networks), thread_name_prefix="egress") as pool:
        got = dict(zip(networks, pool.map(fetches, networks), strict=True))
    log.info("containers -> " + ", ".join(f"{host}:{port} from {n}: {'ok' if ok else 'FAILS'}"
                                          for n, ok in got.items()))
    return got
