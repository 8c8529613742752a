"""Validates every line of the given files as an Airbyte protocol message.

Each line must parse as `AirbyteMessage` (airbyte-protocol-models, pydantic) and carry no
field the protocol does not define: the models accept extra fields, so a misspelt one
(`source_stats` for `sourceStats`) would pass unnoticed. Free-form values (records, schemas,
stream state) are not walked. Prints the count of each message type as JSON.
"""

import collections
import json
import sys

from airbyte_protocol.models import AirbyteMessage, AirbyteStateBlob
from pydantic import BaseModel


def extra_fields(model, path):
    if isinstance(model, AirbyteStateBlob):
        return []
    found = [f"{path}.{name}" for name in model.__fields_set__ - set(model.__fields__)]
    for name in model.__fields_set__ & set(model.__fields__):
        value = getattr(model, name)
        for i, item in enumerate(value if isinstance(value, list) else [value]):
            if isinstance(item, BaseModel):
                found += extra_fields(item, f"{path}.{name}[{i}]" if isinstance(value, list) else f"{path}.{name}")
    return found


counts = collections.Counter()
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            message = AirbyteMessage.parse_raw(line)
            unknown = extra_fields(message, "message")
            if unknown:
                sys.exit(f"{path}:{number}: fields the protocol does not define: {', '.join(unknown)}")
            kind = message.type.value
            if kind == "TRACE":
                kind += "." + message.trace.type.value
            counts[kind] += 1
print(json.dumps(counts))
