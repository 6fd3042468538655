"""`python -m apiserver --etcd-servers ... --secure-port ...`: run the API server."""

from __future__ import annotations

import asyncio
import logging
import sys

from apiserver.app import parse_args, serve
from kubelite.process import exit_with


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    options = parse_args(argv)
    try:
        asyncio.run(serve(options))
    except OSError as err:
        logging.getLogger("apiserver").error("cannot serve: %s", err)
        return 1
    return 0


if __name__ == "__main__":
    exit_with(main())
