"""schemathesis hooks for the gateway's API: tus bodies and STOW-RS bodies are raw
bytes (application/offset+octet-stream, multipart/related), which schemathesis cannot
serialise on its own."""
import schemathesis

schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")
schemathesis.serializer.alias("multipart/related", "application/octet-stream")
