# The original FastAPI service's Python client, verbatim, with the base URL and token
# taken from the environment so the test can point it at a live server.
import requests
import json
import os
from datetime import datetime, timedelta
class SecureVisionClient:
    """Client for SecureVision Events API."""
    def __init__(self, base_url="http://localhost:8000", token=None):
        self.base_url = base_url
        self.headers = {}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
    def get_health(self):
        """Get system health and metrics."""
        response = requests.get(f"{self.base_url}/health")
        response.raise_for_status()
        return response.json()
    def get_events(self, event_type=None, since_ms=None, limit=100):
        """Query events with filters."""
        params = {"limit": limit}
        if event_type:
            params["type"] = event_type
        if since_ms:
            params["since"] = since_ms
        response = requests.get(
            f"{self.base_url}/events",
            headers=self.headers,
            params=params
        )
        response.raise_for_status()
        return response.json()
    def get_recent_face_matches(self, minutes=5):
        """Get face matches from last N minutes."""
        since_ms = int((datetime.now() - timedelta(minutes=minutes)).timestamp() * 1000)
        return self.get_events(event_type="face_match", since_ms=since_ms)
    def get_recent_plate_reads(self, minutes=5):
        """Get plate reads from last N minutes."""
        since_ms = int((datetime.now() - timedelta(minutes=minutes)).timestamp() * 1000)
        return self.get_events(event_type="plate_read", since_ms=since_ms)
    def cleanup_old_events(self):
        """Trigger manual cleanup of old events."""
        response = requests.post(
            f"{self.base_url}/cleanup",
            headers=self.headers
        )
        response.raise_for_status()
        return response.json()
# Usage
client = SecureVisionClient(base_url=os.environ["BASE_URL"], token="your-token-here")
# Check system health
health = client.get_health()
print(f"System OK: {health['ok']}")
print(f"Events/second: {health.get('event_rate', {}).get('events_per_second', 0):.2f}")
# Get recent face matches
faces = client.get_recent_face_matches(minutes=10)
for event in faces:
    name = event['payload']['person_name']
    similarity = event['payload']['similarity']
    print(f"Face: {name} (similarity: {similarity:.2f})")
# Get recent plate reads
plates = client.get_recent_plate_reads(minutes=10)
for event in plates:
    plate_text = event['payload']['plate_text']
    list_match = event['payload'].get('list_match', 'unknown')
    print(f"Plate: {plate_text} ({list_match})")
print(f"Cleanup: {client.cleanup_old_events()}")
