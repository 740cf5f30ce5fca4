"""The public API of hookstream.subscriptions stays what the workers are built against."""

import types

import hookstream.subscriptions as subscriptions


def test_public_api_is_exactly_all():
    public = {
        name for name, value in vars(subscriptions).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)  # submodules appear once imported
    }
    assert set(subscriptions.__all__) == public
    assert {"SubscriptionTable", "follow", "FollowerThread", "matches", "check_url", "check_address", "publish_pending", "sync"} <= set(subscriptions.__all__)
