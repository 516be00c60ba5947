"""Placeholder: being written."""


class PipeEndpoints:
    _loop: object
