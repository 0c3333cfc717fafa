"""Model backends: one protocol for API and local models (pure Python, no Django).

>>> from backends import get_backend
>>> backend = get_backend("static", {"text": "Hello!"})
>>> backend.generate([{"role": "user", "content": "Hi"}], {"do_sample": False}).text
'Hello!'
"""

from backends.base import Backend, GenerationResult, Message, StreamingGeneration, normalize_messages
from backends.errors import ERROR_KINDS, BackendError, ErrorKind, InvalidRequest
from backends.params import DecodingParams
from backends.registry import BACKENDS, available_kinds, backend_class, get_backend

__all__ = [
    "BACKENDS",
    "ERROR_KINDS",
    "Backend",
    "BackendError",
    "DecodingParams",
    "ErrorKind",
    "GenerationResult",
    "InvalidRequest",
    "Message",
    "StreamingGeneration",
    "available_kinds",
    "backend_class",
    "get_backend",
    "normalize_messages",
]
