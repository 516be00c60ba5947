"""Placeholder: being written."""


class DatagramEndpoints:
    _loop: object
