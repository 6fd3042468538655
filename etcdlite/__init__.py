"""etcdlite."""
