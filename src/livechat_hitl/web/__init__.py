"""Server-rendered pages (the sandbox's agent console)."""
