"""The bot side: Standard Webhooks signing and sender, and the SSE event feed."""
