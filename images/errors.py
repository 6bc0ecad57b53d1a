"""Images' domain errors, each with its status, stable code and a detail naming the limit."""

from __future__ import annotations

from config.errors import DomainError


def size_text(size_bytes: int) -> str:
    """Return a byte count in decimal units, as the tiers publish their limits: "25 MB"."""
    for unit, scale in (("MB", 1_000_000), ("KB", 1_000)):
        if size_bytes >= scale:
            return f"{size_bytes / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{size_bytes:,} bytes"


def _size_text(size_bytes: int) -> str:
    """Return a byte count as people read it, e.g. "12.3 MB (12,345,678 bytes)"."""
    rounded = size_text(size_bytes)
    # The exact count follows because 5.0 MB may still be a byte over 5 MB.
    return rounded if size_bytes < 1_000 else f"{rounded} ({size_bytes:,} bytes)"


def _pixels_text(pixels: int) -> str:
    """Return a pixel count as people read it, e.g. "67.1 megapixels" or "12,000 pixels"."""
    if pixels >= 100_000:
        return f"{pixels / 1_000_000:.1f}".removesuffix(".0") + " megapixels"
    return f"{pixels:,} pixels"


def alternatives(names: list[str]) -> str:
    """Return names joined for a sentence: "A, B or C"."""
    return f"{', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else names[0]


class FileTooLarge(DomainError):
    status = 413
    code = "FILE_TOO_LARGE"
    title = "File too large"

    def __init__(self, *, size_bytes: int | None, limit_bytes: int) -> None:
        limit = f"the largest file accepted is {_size_text(limit_bytes)}"
        if size_bytes is None:
            super().__init__(f"The file is larger than the limit: {limit}.")
        else:
            super().__init__(f"The file is {_size_text(size_bytes)}; {limit}.")


class UnsupportedMediaType(DomainError):
    status = 415
    code = "UNSUPPORTED_MEDIA_TYPE"
    title = "Unsupported media type"

    def __init__(self, *, accepted: list[str]) -> None:
        super().__init__(
            "The file is not an image in an accepted format; send a "
            f"{alternatives(accepted)} image. The format is read from the file's contents, "
            "not from its name."
        )


class ExtensionMismatch(DomainError):
    """The file's name promises another format than its contents hold."""

    status = 415
    code = "UNSUPPORTED_MEDIA_TYPE"
    title = "File name does not match its format"

    def __init__(self, *, extension: str | None, label: str, expected: list[str]) -> None:
        names = alternatives([f".{name}" for name in expected])
        if extension is None:
            super().__init__(
                f"The file name has no extension; a {label} image must end in {names}."
            )
        else:
            super().__init__(
                f"The file name ends in .{extension} but the file holds a {label} image; "
                f"a {label} image must end in {names}."
            )


class InvalidImage(DomainError):
    status = 400
    code = "INVALID_IMAGE"
    title = "Invalid image"

    def __init__(self, *, label: str | None = None) -> None:
        what = f"a {label} image" if label else "an image"
        super().__init__(
            f"The file could not be read as {what}: it is empty, truncated or damaged. "
            "Save it again and send it once more."
        )


class ImageDimensionsOutOfRange(DomainError):
    status = 400
    code = "IMAGE_DIMENSIONS_OUT_OF_RANGE"
    title = "Image dimensions out of range"

    def __init__(self, *, width: int, height: int, minimum: int, maximum: int) -> None:
        super().__init__(
            f"The image is {width}x{height} pixels; each side must be between "
            f"{minimum} and {maximum} pixels."
        )


class DecompressionBomb(DomainError):
    """The header claims more pixels than the largest accepted image has."""

    status = 400
    code = "IMAGE_DIMENSIONS_OUT_OF_RANGE"
    title = "Image dimensions out of range"

    def __init__(self, *, maximum: int) -> None:
        super().__init__(
            "The image claims more pixels than the largest accepted image "
            f"({maximum}x{maximum}, {_pixels_text(maximum * maximum)}); it is "
            "refused as a possible decompression bomb."
        )


class TooManyFrames(DomainError):
    status = 400
    code = "IMAGE_DIMENSIONS_OUT_OF_RANGE"
    title = "Too many frames"

    def __init__(self, *, frames: int, limit: int) -> None:
        super().__init__(f"The animation has {frames} frames; at most {limit} are accepted.")


class AnimationTooLarge(DomainError):
    """An animation whose frames hold more pixels in all than accepted."""

    status = 400
    code = "IMAGE_DIMENSIONS_OUT_OF_RANGE"
    title = "Animation too large"

    def __init__(self, *, frames: int, pixels: int, limit: int) -> None:
        super().__init__(
            f"The animation's {frames} frames hold {_pixels_text(pixels)} in all; at most "
            f"{_pixels_text(limit)} are accepted."
        )


class UpscaleTooLarge(DomainError):
    """Upscaling would give an image larger than the largest accepted one."""

    status = 400
    code = "IMAGE_DIMENSIONS_OUT_OF_RANGE"
    title = "Upscaled image too large"

    def __init__(self, *, width: int, height: int, factor: int, maximum: int) -> None:
        super().__init__(
            f"Upscaling the {width}x{height} image {factor} times would give "
            f"{width * factor}x{height * factor} pixels; each side may be at most {maximum} "
            "pixels. Choose a smaller scale or a smaller image."
        )


# Seconds a client is asked to wait before sending an upload the storage refused.
STORAGE_RETRY_AFTER = 60


class InsufficientStorage(DomainError):
    """The storage has no room for the file: nothing was kept, and a later retry may fit."""

    status = 507
    code = "INSUFFICIENT_STORAGE"
    title = "Insufficient storage"
    default_detail = (
        "The server's image storage is full, so the upload was not kept; nothing was "
        "counted against the quota. Send it again later."
    )

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": str(STORAGE_RETRY_AFTER)})


class StorageUnavailable(DomainError):
    """The storage failed to keep the file: nothing was kept, and a later retry may succeed."""

    status = 503
    code = "STORAGE_UNAVAILABLE"
    title = "Storage unavailable"
    default_detail = (
        "The server's image storage cannot be written now, so the upload was not kept; "
        "nothing was counted against the quota. Send it again shortly."
    )

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": str(STORAGE_RETRY_AFTER)})


class IdempotencyKeyReused(DomainError):
    status = 409
    code = "IDEMPOTENCY_KEY_REUSED"
    title = "Idempotency key reused"
    default_detail = (
        "This Idempotency-Key was first sent with another file; send a new key for a new file."
    )


class IdempotencyKeyInFlight(DomainError):
    status = 409
    code = "CONFLICT"
    title = "Request in progress"
    default_detail = (
        "A request with this Idempotency-Key is still being answered; retry in a moment."
    )


class TransientJobError(Exception):
    """A failure worth another attempt later (a provider, the storage or the database).

    `code` is the job's error code should no attempt be left; `attempt` is the
    attempt that failed, which the next one may take the job over from.
    """

    def __init__(
        self, message: str, *, code: str = "PROCESSING_FAILED", attempt: int | None = None
    ) -> None:
        self.code, self.attempt = code, attempt
        super().__init__(message)


class PermanentJobError(Exception):
    """A failure no retry can mend, with a code and a message a person understands."""

    def __init__(self, code: str, message: str) -> None:
        self.code, self.message = code, message
        super().__init__(message)


class ClaimLost(Exception):
    """Another attempt has taken the job over: this one must write nothing more."""
