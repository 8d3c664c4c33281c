"""The conference API's two ends as one contract: the bridge's client (``client``), the embedded
server (``server``) and the wire vocabulary both speak (``wire``)."""
