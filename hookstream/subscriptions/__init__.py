"""Subscriptions: where each tenant's webhooks go."""
