"""python-wechaty's puppet-service client with its faults fixed (imported by `library.load`
only, after the environment is set up)."""

from __future__ import annotations

import contextlib
from typing import Any


def make_puppet_class() -> type[Any]:
    from grpclib.client import Channel
    from grpclib.exceptions import GRPCError
    from wechaty_grpc.wechaty import PuppetStub
    from wechaty_grpc.wechaty.puppet import RoomQrCodeRequest, RoomQrCodeResponse
    from wechaty_puppet.exceptions import WechatyPuppetConfigurationError
    from wechaty_puppet_service import PuppetService
    from wechaty_puppet_service.utils import extract_host_and_port

    class QunbotPuppetService(PuppetService):
        """`PuppetService` with a connection life cycle the adapter can drive step by step
        (`handshake`, `listen`, `close_channel`) and three client bugs fixed."""

        def _init_puppet(self) -> None:
            # Replaces the library's version, which (1) without an endpoint fetches one from
            # https://api.chatie.io/v0/hosties/<token> (internet, token in a URL) and (2) "pings"
            # the endpoint with a blocking telnetlib connect of up to 3 s on the event loop and
            # never closes that socket. The adapter checks the endpoint with an async connect
            # before calling this.
            if not self.options.end_point:
                raise WechatyPuppetConfigurationError("no puppet-service endpoint configured")
            host, port = extract_host_and_port(self.options.end_point)
            # python-wechaty speaks plain-text HTTP/2 (grpclib, no TLS option).
            self.channel = Channel(host=host, port=port)
            # The token travels as the HTTP/2 :authority header, as in the library; the 1.x
            # service accepts it there (it falls back from `authorization` to `Wechaty <token>`).
            self.channel._authority = self.options.token
            self._puppet_stub = PuppetStub(self.channel)

        async def handshake(self) -> None:
            """Open the channel and (re)start the puppet: Stop, then Start, as the library does.
            A failing Stop (nothing to stop yet) must not fail the connection: the library's
            `try: stop() finally: start()` re-raised it after a successful Start."""
            self._init_puppet()
            with contextlib.suppress(GRPCError):
                await self.puppet_stub.stop()
            await self.puppet_stub.start()

        async def listen(self) -> None:
            """Read the event stream until it ends (returns) or breaks (raises)."""
            await self._listen_for_event()

        def close_channel(self) -> None:
            """Drop the connection without any call: for a connection that is already dead
            (the library's `stop()` first sends a Stop call, which would hang)."""
            self._event_stream.remove_all_listeners()
            self._puppet_stub = None
            if self.channel is not None:
                self.channel.close()
                self.channel = None

        async def room_qr_code(self, room_id: str) -> str:
            # python-wechaty 0.10.7 sends the RoomQRCode request without the room id (its
            # generated stub has no parameter for it; the request message has the field).
            response = await self.puppet_stub._unary_unary(
                "/wechaty.Puppet/RoomQRCode", RoomQrCodeRequest(id=room_id), RoomQrCodeResponse
            )
            return str(response.qrcode)

        async def friendship_payload(self, friendship_id: str, payload: Any = None) -> Any:
            # The library always sends `payload=json.dumps(payload)`, i.e. the string "null"
            # for a plain read, which a service may take as "set the payload to null".
            if payload is not None:
                return await super().friendship_payload(friendship_id, payload)
            return await self.puppet_stub.friendship_payload(id=friendship_id)

    return QunbotPuppetService
