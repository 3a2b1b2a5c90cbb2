"""Where the probe server listens unless told otherwise.

Shared by the server's configuration, the exec-probe client, the demo that
starts a server next to a cluster, and (as a literal) ``k8s/worker.sh`` and
the manifests, which cannot import it.
"""

DEFAULT_PORT = 9847
