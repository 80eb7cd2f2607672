"""schemathesis hooks for the gateway's API: tus bodies are raw bytes
(application/offset+octet-stream), which schemathesis cannot serialise on its own."""
import schemathesis

schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")
