"""The public API of hookstream.subscriptions stays what the workers are built against."""

import hookstream.subscriptions as subscriptions


def test_public_api_is_exactly_all():
    public = {name for name in vars(subscriptions) if not name.startswith("_")}
    modules = {"filters", "models", "secrets", "store", "topic", "urls", "view"}
    assert set(subscriptions.__all__) == public - modules
    assert {"SubscriptionTable", "follow", "FollowerThread", "matches", "check_url", "check_address", "publish_pending", "sync"} <= set(subscriptions.__all__)
