"""HTTP doors: LiveChat webhooks, the bot API v1, health and metrics."""
