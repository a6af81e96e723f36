"""The guide's example filter: adds one configured header to every request
and every response. Configure it with
``{"name": "x-weft-example", "value": "hello"}``."""

import json
import re

from weft_plugin import Plugin, export

# A header name is an RFC 9110 token.
HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


class AddHeader(Plugin):
    def __init__(self, config: str):
        settings = json.loads(config)
        self.name, self.value = settings["name"], settings["value"]
        # Refuse a bad header at startup rather than on every request.
        if not HEADER_NAME.fullmatch(self.name):
            raise ValueError(f"invalid header name {self.name!r}")
        if any(ord(c) < 32 and c != "\t" or ord(c) == 127 for c in self.value):
            raise ValueError(f"invalid header value {self.value!r}")

    def on_request(self, req):
        req.set_header(self.name, self.value)

    def on_response(self, req, rsp):
        rsp.set_header(self.name, self.value)


Filter = export(AddHeader)
