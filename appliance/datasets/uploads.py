"""Receiving uploaded files without ever writing their plaintext to disk or holding a whole file in memory.

Django's own handlers keep an upload in memory up to 2.5 MB and then spill it to a plaintext temporary file.
`EncryptingUploadHandler` replaces both (it is the one entry of `FILE_UPLOAD_HANDLERS`): each chunk the multipart
parser hands over (64 KiB) is encrypted straight into a `Spool` (appliance/vault/spool.py), under a key that
exists only in this process's memory. What a view receives in `request.FILES` is an `EncryptedUpload`, an ordinary
`UploadedFile` whose reads decrypt (and check) one segment at a time and which can seek, so a ZIP's directory can
be read from its end.

Caps: one file may bring at most `UPLOAD_MAX_FILE_BYTES`, one request at most `UPLOAD_MAX_REQUEST_BYTES` of file
data. Over a cap the handler stops the upload (`StopUpload`: Django reads and drops the rest of the body, so the
client gets an answer rather than a reset connection) and remembers why; the view asks `upload_refusal(request)`
and answers 413 with that message. Files completed before the refusal may still be in `request.FILES`: a view must
check the refusal first.

Every spool is deleted when the request ends, whatever happens:
- a completed file: `EncryptedUpload.close()` deletes its spool, and Django closes every file in `request.FILES`
  when the response is closed (`HttpRequest.close`, registered by `BaseHandler.get_response`), also when the view
  raised, since the exception has become a response by then;
- a file cut short: the handler deletes the spool at once on `upload_interrupted` (the body ended early: the
  client went away) and when it refuses the upload;
- a file abandoned by an error inside Django's parser (malformed multipart, an unreadable body), which Django
  neither completes nor reports to the handler: the `request_finished` signal, which the handler answers by
  deleting every spool it made. The signal does not say which request finished, so the handler answers it only in
  the thread that parsed its upload: under WSGI (gunicorn, the appliance's server) a thread serves one request at
  a time and the server closes the response in that same thread.
A process killed mid-request leaves a spool nobody can read (its key died with the process); `sweep_spool` removes
it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import IO, Any, NoReturn, cast

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.core.signals import request_finished
from django.http import HttpRequest

from appliance.vault.spool import Spool

MiB = 1024 * 1024
DEFAULT_MAX_FILE_BYTES = 256 * MiB
DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * MiB


@dataclass(frozen=True)
class UploadRefusal:
    """Why an upload was stopped: `scope` is "file" (one file over its cap) or "request" (all files together)."""

    scope: str
    limit: int
    file_name: str
    message: str


def _readable(size: int) -> str:
    return f"{size // MiB:,} MiB" if size and size % MiB == 0 else f"{size:,} bytes"


class EncryptedUpload(UploadedFile):
    """An uploaded file held encrypted in a spool; reading it decrypts and checks one segment at a time.

    `sha256` (hex, of the plaintext) and `size` were measured as the bytes arrived, so nothing has to read the
    file again to learn them. Closing it deletes the spool, like closing Django's temporary upload deletes its
    file; after that it cannot be reopened. It never has a `temporary_file_path`: there is no plaintext path.
    """

    def __init__(
        self,
        spool: Spool,
        *,
        name: str | None,
        content_type: str | None,
        charset: str | None,
        content_type_extra: dict[str, bytes] | None,
    ) -> None:
        # The reader is a binary file in all but typeshed's nominal `IO` class.
        reader = cast(IO[bytes], spool.open())
        super().__init__(reader, name, content_type, spool.size, charset, content_type_extra)
        self.spool = spool
        self.sha256 = spool.sha256

    def open(self, mode: str | None = None, *args: Any, **kwargs: Any) -> EncryptedUpload:
        """Back to the first byte (a fresh reader if this one was closed). Read-only, and never by file name:
        `File.open` would open whatever file in the working directory has the upload's name."""
        if mode is not None and any(flag in mode for flag in "wax+"):
            raise ValueError("an encrypted upload is read-only")
        if self.spool.deleted:
            raise ValueError("the upload was closed and its spool deleted; it cannot be reopened")
        if self.closed:
            self.file = cast(IO[bytes], self.spool.open())
        else:
            self.seek(0)
        return self

    def close(self) -> None:
        try:
            if self.file is not None:
                self.file.close()
        finally:
            self.spool.delete()


class EncryptingUploadHandler(FileUploadHandler):
    """Encrypts every uploaded file into a spool as it arrives, and enforces the per-file and per-request caps.

    It takes every chunk (returns None), so it must be the only upload handler, or the last. Memory held per
    upload: Django's chunk plus at most one segment waiting to be sealed and one sealed segment being written.
    """

    def __init__(self, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        self.max_file_bytes = int(getattr(settings, "UPLOAD_MAX_FILE_BYTES", DEFAULT_MAX_FILE_BYTES))
        self.max_request_bytes = int(getattr(settings, "UPLOAD_MAX_REQUEST_BYTES", DEFAULT_MAX_REQUEST_BYTES))
        self.refusal: UploadRefusal | None = None
        self.spools: list[Spool] = []
        self._current: Spool | None = None
        self._received = 0  # file bytes of this request, all files together
        self._thread = threading.get_ident()
        self._listening = False

    def new_file(
        self,
        field_name: str,
        file_name: str,
        content_type: str,
        content_length: int | None,
        charset: str | None = None,
        content_type_extra: dict[str, bytes] | None = None,
    ) -> None:
        super().new_file(field_name, file_name, content_type, content_length, charset, content_type_extra)
        self._discard_current()  # a file that another handler skipped never completed
        if content_length is not None and content_length > self.max_file_bytes:
            self._refuse("file")  # the part declares its length: refuse before writing a byte
        if not self._listening:
            request_finished.connect(self._request_finished, weak=False)
            self._listening = True
        self._current = Spool()
        self.spools.append(self._current)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        spool = self._current
        if spool is None:
            return raw_data  # an earlier handler took this file over (StopFutureHandlers)
        if spool.size + len(raw_data) > self.max_file_bytes:
            self._refuse("file")
        if self._received + len(raw_data) > self.max_request_bytes:
            self._refuse("request")
        spool.write(raw_data)
        self._received += len(raw_data)
        return None

    def file_complete(self, file_size: int) -> UploadedFile[Any] | None:
        spool, self._current = self._current, None
        if spool is None:
            return None
        try:
            spool.close_for_writing()
            return EncryptedUpload(
                spool,
                name=self.file_name,
                content_type=self.content_type,
                charset=self.charset,
                content_type_extra=self.content_type_extra,
            )
        except BaseException:
            spool.delete()
            raise

    def upload_interrupted(self) -> None:
        """The body ended inside a file (the client went away): its spool goes now, not at the end of the request."""
        self._discard_current()

    def delete_spools(self) -> None:
        """Delete every spool this handler made, completed or not (the files of `request.FILES` become unreadable),
        and stop listening for the end of the request: there is nothing left to clean up."""
        if self._listening:
            request_finished.disconnect(self._request_finished)
            self._listening = False
        self._current = None
        for spool in self.spools:
            spool.delete()

    def _request_finished(self, sender: object, **kwargs: Any) -> None:
        if threading.get_ident() == self._thread:  # else another thread's request has finished, not this one
            self.delete_spools()

    def _discard_current(self) -> None:
        spool, self._current = self._current, None
        if spool is not None:
            spool.delete()

    def _refuse(self, scope: str) -> NoReturn:
        name = self.file_name or "(unnamed)"
        if scope == "file":
            limit = self.max_file_bytes
            message = f"The file {name!r} is larger than {_readable(limit)}, the most one uploaded file may be."
        else:
            limit = self.max_request_bytes
            message = (
                f"The files of this upload come to more than {_readable(limit)}, the most one upload may bring "
                f"(stopped at {name!r}). Send them in several uploads."
            )
        self.refusal = UploadRefusal(scope=scope, limit=limit, file_name=name, message=message)
        self._discard_current()
        raise StopUpload(connection_reset=False)


def upload_refusal(request: HttpRequest) -> UploadRefusal | None:
    """Why the upload of `request` was stopped, or None if it was not; parses the body first if nothing has yet.

    A view that receives files calls this before looking at `request.FILES` and answers 413 with the message.
    """
    request.FILES  # noqa: B018 -- parsing is what runs the handlers
    for handler in request.upload_handlers:
        if isinstance(handler, EncryptingUploadHandler) and handler.refusal is not None:
            return handler.refusal
    return None
