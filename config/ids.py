"""The type of an object's id as code passes it around: a UUID, or its text."""

from __future__ import annotations

from typing import TypeAlias
from uuid import UUID

Id: TypeAlias = UUID | str
