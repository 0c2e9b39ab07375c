"""Files served from folders that others write into (/media: workers, some over SFTP; /inputs: uploads).

Bottle's ``static_file`` keeps a name inside its root by the name alone (``os.path.abspath``) and then
follows whatever links the path holds, so a link planted in the media folder (``<id>.jpg`` → the web host's
config/local.yaml) would be served with every secret in it. Here a file is served only when it is a regular
file with one name, reached from the folder's real path through no symlink at all; anything else is
answered as a file that is not there. Range requests, ETag/Last-Modified and MIME types stay Bottle's.
"""

from __future__ import annotations

import os
import stat

from bottle import HTTPResponse, static_file

from web.replies import json_error


def inside(root: str, name: str) -> str | None:
    """The real path of the file ``name`` (relative, ``/``-separated) under ``root``, or None when it is not a
    regular file of that folder, with no symlink on the way and no other name (a hardlink) elsewhere."""
    base = os.path.realpath(root)  # the folder itself may be a link the operator made: that one is followed
    path = os.path.normpath(os.path.join(base, name))
    if os.path.commonpath([base, path]) != base or os.path.realpath(path) != path:
        return None  # outside, or some part of the way (the file or a folder) is a symlink
    try:
        found = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(found.st_mode) or found.st_nlink != 1:
        return None
    return path


def serve(root: str, name: str, mimetype: str | bool = True) -> HTTPResponse:
    """``name`` from ``root`` as ``static_file`` serves it, when :func:`inside` allows it; else a JSON 404."""
    path = inside(root, name)
    if path is None:
        return not_found()
    base = os.path.realpath(root)
    reply: HTTPResponse = static_file(os.path.relpath(path, base), root=base, mimetype=mimetype)
    return reply


def not_found() -> HTTPResponse:
    return json_error(404, "not_found", "no such file")
