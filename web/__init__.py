"""The web tier: validates requests, queues job packages, serves pages, inputs and results."""
