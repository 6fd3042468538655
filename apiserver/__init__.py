"""apiserver: the Kubernetes REST API on aiohttp, the only process that touches the store.

Run as `python -m apiserver --etcd-servers http://127.0.0.1:2379 --secure-port 6443 ...`.
"""
