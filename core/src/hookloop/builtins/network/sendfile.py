"""Placeholder: being written."""


class Sendfile:
    _loop: object
