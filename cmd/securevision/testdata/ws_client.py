# The original FastAPI service's Python WebSocket client, verbatim except the URI,
# which the test passes in the environment.
import asyncio
import os
import websockets
import json
async def stream_events():
    uri = os.environ["WS_URI"]
    async with websockets.connect(uri) as websocket:
        print("Connected to SecureVision stream", flush=True)
        while True:
            try:
                message = await websocket.recv()
                data = json.loads(message)
                if data.get("type") == "face_match":
                    name = data["payload"]["person_name"]
                    print(f"Face detected: {name}", flush=True)
                elif data.get("type") == "plate_read":
                    plate = data["payload"]["plate_text"]
                    print(f"Plate detected: {plate}", flush=True)
            except websockets.ConnectionClosed:
                print("Connection closed", flush=True)
                break
asyncio.run(stream_events())
