"""Identity's Kafka side: it applies revocations like every service, and publishes them with
administrative changes and its sign-in and token audit."""

from contracts import events as ev
from services.common.access import EMITTED
from services.common.consumers import Publisher
from services.common.revocation import access_consumer

access = access_consumer("identity")
CONSUMERS = (access,)
PUBLISHER = Publisher(
    "identity",
    (ev.AccessGranted, ev.AdminChanged, ev.AccessRevoked, ev.AccessRestored, *EMITTED),
)
