"""Uploaded files: kept in memory, served back at a CDN-style URL under the simulator."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from livechat_hitl.livechat.wire import MAX_UPLOAD_BYTES

from .errors import SimError

CDN_PREFIX = "/cdn/api/file/lc/att"
# Executables are refused by LiveChat's upload_file.
_EXECUTABLE_SUFFIXES = (".exe", ".bat", ".cmd", ".com", ".msi", ".scr", ".sh", ".dll")


@dataclass(frozen=True)
class StoredFile:
    name: str
    content_type: str
    content: bytes
    url: str

    @property
    def size(self) -> int:
        return len(self.content)


class FileStore:
    def __init__(self, base_url: str, organization_id: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.organization_id = organization_id
        self._by_path: dict[str, StoredFile] = {}

    def put(self, name: str, content: bytes, content_type: str | None) -> StoredFile:
        if len(content) > MAX_UPLOAD_BYTES:
            raise SimError("entity_too_large")
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", name or "file") or "file"
        if safe.lower().endswith(_EXECUTABLE_SUFFIXES):
            raise SimError("validation", "Executable files are not allowed")
        digest = hashlib.sha256(content + safe.encode()).hexdigest()[:32]
        path = f"{CDN_PREFIX}/{self.organization_id}/{digest}/{safe}"
        stored = StoredFile(
            safe, content_type or "application/octet-stream", content, self.base_url + path
        )
        self._by_path[path] = stored
        return stored

    def get_path(self, path: str) -> StoredFile | None:
        return self._by_path.get(path)

    def by_url(self, url: str) -> StoredFile | None:
        """The stored file an URL points at, whatever host the caller used to reach us."""
        index = url.find(CDN_PREFIX)
        return self._by_path.get(url[index:]) if index >= 0 else None
