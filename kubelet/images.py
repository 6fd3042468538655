"""Making a container's image available according to its imagePullPolicy, with pull back-off.

Never: use the local image or report ErrImageNeverPull. IfNotPresent: pull only when it is
missing. Always: pull every time; a failed pull is ErrImagePull even when an old copy exists
locally, as Kubernetes does. After a failed pull, ImagePullBackOff until the back-off (10 s
doubling to 5 min) has passed. Touches the runtime only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from kubelet.backoff import Backoff
from kubelet.containerspec import PullPolicy
from kubelet.podstate import Waiting
from kubelet.runtime import ContainerRuntimeError, ImagePullError, Runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageOutcome:
    waiting: Waiting | None = None
    """Why the container cannot start yet; None when the image is ready."""
    pulled: bool = False


class ImageManager:
    def __init__(self, runtime: Runtime, clock: Callable[[], float], backoff: Backoff | None = None):
        self.runtime = runtime
        self.clock = clock
        self.backoff = backoff or Backoff()

    def _key(self, pod_uid: str, image: str) -> str:
        return f"{pod_uid}/{image}"

    async def ensure(self, pod_uid: str, image: str, policy: PullPolicy) -> ImageOutcome:
        """Whether the image is ready to run (and was pulled for it), or why the container waits."""
        if not image or image != image.strip():
            return ImageOutcome(Waiting("InvalidImageName", f'Failed to apply default image tag "{image}"'))
        try:
            present = await self.runtime.image_present(image)
        except ContainerRuntimeError as e:
            return ImageOutcome(Waiting("ErrImagePull", str(e)))
        if policy is PullPolicy.NEVER:
            if present:
                return ImageOutcome()
            message = f'Container image "{image}" is not present with pull policy of Never'
            return ImageOutcome(Waiting("ErrImageNeverPull", message))
        if policy is PullPolicy.IF_NOT_PRESENT and present:
            return ImageOutcome()
        key = self._key(pod_uid, image)
        now = self.clock()
        if self.backoff.remaining_since_update(key, now) > 0:
            return ImageOutcome(Waiting("ImagePullBackOff", f'Back-off pulling image "{image}"'))
        log.info("pulling image %s", image)
        try:
            await self.runtime.pull_image(image)
        except ImagePullError as e:
            self.backoff.next(key, now, now)
            log.warning("failed to pull image %s: %s", image, e)
            return ImageOutcome(Waiting("ErrImagePull", f'failed to pull image "{image}": {e}'))
        return ImageOutcome(pulled=True)

    def retry_after(self, pod_uid: str, image: str) -> float:
        """Seconds until the next pull attempt for this pod's image is allowed."""
        return self.backoff.remaining_since_update(self._key(pod_uid, image), self.clock())

    def forget_pod(self, pod_uid: str) -> None:
        self.backoff.forget_prefix(f"{pod_uid}/")
