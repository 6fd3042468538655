"""batch/v1 Jobs: defaulting, validation and the `kubectl get` columns. Pure."""

from __future__ import annotations

from typing import ClassVar

from apiserver.meta import JSONObject
from apiserver.strategy import Strategy


class JobStrategy(Strategy):
    kind = "Job"
    empty_status: ClassVar[JSONObject] = {}

    def prepare_for_create(self, obj: JSONObject) -> None:
        obj["status"] = dict(self.empty_status)

    def prepare_for_update(self, new: JSONObject, old: JSONObject) -> None:
        new["status"] = old.get("status") or dict(self.empty_status)
