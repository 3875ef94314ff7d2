"""Where URIs live: local paths, file:// and s3:// through fsspec/s3fs.

The only module that imports fsspec. S3 endpoint, region and credentials come from the
standard AWS environment variables and config files (botocore reads AWS_ENDPOINT_URL,
AWS_REGION, AWS_ACCESS_KEY_ID, ...), so nothing here is S3-specific.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

import fsspec
from fsspec.core import url_to_fs

from classifier_core.errors import DocclassError


class StorageError(DocclassError):
    """A URI cannot be listed, read or written."""


_CREDENTIALS_IN_URI = re.compile(r"(?<=://)[^/@\s]+@")


def redact(uri: str) -> str:
    """The URI without any user:password@ part, safe for logs and messages."""
    return _CREDENTIALS_IN_URI.sub("***@", uri)


def is_remote(uri: str) -> bool:
    return "://" in uri and not uri.startswith("file://")


def _filesystem(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    try:
        return url_to_fs(uri)
    except (ImportError, ValueError) as exc:
        raise StorageError(f"{redact(uri)}: expected a local path, file:// or s3:// URI; found {exc}") from exc
    except OSError as exc:  # e.g. hdfs:// without its native library: a verdict on the URI, not worth a retry
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StorageError(f"{redact(uri)}: expected a local path, file:// or s3:// URI; found one that cannot be opened ({reason})") from None


def _as_uri(fs: fsspec.AbstractFileSystem, path: str, like: str) -> str:
    """Turns an fsspec path back into a URI of the same scheme as ``like``."""
    if is_remote(like):
        return fs.unstrip_protocol(path)
    return path


def list_objects(uri: str) -> list[str]:
    """Every object whose key starts with ``uri``, in key order; or ``[uri]`` for a file.

    Prefix semantics are S3's, also for local paths: ``in/doc`` selects ``in/doc1.txt``
    and ``in/doc/x.txt`` but not ``in/other.txt``; ``in/`` selects everything under ``in``.

    Raises:
        StorageError: if the location cannot be listed.
    """
    fs, path = _filesystem(uri)
    try:
        if fs.isfile(path):
            return [_as_uri(fs, path, uri)]
        if uri.endswith("/") and not path.endswith("/"):
            path += "/"
        parent, _, name_prefix = path.rpartition("/")
        if not parent:  # a bare bucket name
            found = fs.find(path)
        elif is_remote(uri):
            found = fs.find(parent, prefix=name_prefix)
        else:
            found = fs.find(parent) if fs.isdir(parent) else []
    except (OSError, ValueError) as exc:
        raise StorageError(f"{redact(uri)}: cannot list: {exc}") from exc
    keys = sorted(p for p in found if p.startswith(path))
    return [_as_uri(fs, p, uri) for p in keys]


def open_input(uri: str) -> BinaryIO:
    """Opens an object for binary reading; the caller closes it.

    Raises:
        StorageError: if it cannot be opened.
    """
    fs, path = _filesystem(uri)
    try:
        return fs.open(path, "rb")
    except (OSError, ValueError) as exc:
        raise StorageError(f"{redact(uri)}: cannot read: {exc}") from exc


def size_of(uri: str) -> int:
    fs, path = _filesystem(uri)
    try:
        return int(fs.size(path))
    except (OSError, ValueError) as exc:
        raise StorageError(f"{redact(uri)}: cannot read: {exc}") from exc


def base_name(uri: str) -> str:
    """The object's base name, as Comprehend's ``File`` field gives it."""
    return uri.rstrip("/").rsplit("/", 1)[-1]


def join(base: str, *parts: str) -> str:
    """Joins path parts onto a URI or a local path."""
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])


def publish(local_path: str | Path, uri: str) -> str:
    """Copies a finished local file to ``uri`` so that it appears whole or not at all.

    Local targets get a temporary file beside them and an atomic rename; an S3 PUT (single
    or multipart) is visible only once complete.

    Raises:
        StorageError: if the target cannot be written.
    """
    fs, path = _filesystem(uri)
    try:
        if is_remote(uri):
            fs.put_file(str(local_path), path)
            return uri
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
        os.close(fd)
        try:
            shutil.copyfile(local_path, tmp)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return str(target)
    except OSError as exc:
        raise StorageError(f"{redact(uri)}: cannot write: {exc}") from exc


def exists(uri: str) -> bool:
    """Whether an object (or local file) exists at ``uri``.

    Raises:
        StorageError: if the location cannot be asked.
    """
    fs, path = _filesystem(uri)
    try:
        return bool(fs.isfile(path))
    except (OSError, ValueError) as exc:
        raise StorageError(f"{redact(uri)}: cannot read: {exc}") from exc


def read_bytes(uri: str) -> bytes:
    with open_input(uri) as fp:
        try:
            return fp.read()
        except OSError as exc:
            raise StorageError(f"{redact(uri)}: cannot read: {exc}") from exc


def publish_bytes(data: bytes, uri: str, work_dir: str | Path) -> str:
    """``publish`` for a small in-memory object (staged through a file in ``work_dir``)."""
    fd, tmp = tempfile.mkstemp(prefix=".publish.", dir=work_dir)
    try:
        with os.fdopen(fd, "wb") as fp:
            fp.write(data)
        return publish(tmp, uri)
    finally:
        os.unlink(tmp)


def remove_tree(uri: str) -> None:
    """Deletes everything under the folder or prefix ``uri``; nothing there is not an error."""
    fs, path = _filesystem(uri)
    try:
        if fs.exists(path):
            fs.rm(path, recursive=True)
    except FileNotFoundError:
        return
    except (OSError, ValueError) as exc:
        raise StorageError(f"{redact(uri)}: cannot delete: {exc}") from exc
