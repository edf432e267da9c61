"""The reference client's contract, replayed against a running dermq over HTTP.

- `parser`: a port of the reference SDK's response parsing strictness (throws and warnings);
- `scenarios`: every scenario of the reference SDK's live test suite, as data;
- `checks`: the recorder (contract / clinical / identity / spec-deviation);
- `images`: synthetic stand-ins for the suite's photographs, at their exact sizes;
- `runner`: sends the reference client's exact bodies and records the checks.

`python -m tests.api.reference_client --base-url URL --username U --password P` prints the tally.
Imports inside the package are relative so it also imports as plain `reference_client`.
"""
