"""Placeholder: being written."""


class SocketOperations:
    _loop: object
