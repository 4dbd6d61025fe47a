// The original FastAPI service's JavaScript (axios) client, verbatim, with the base
// URL taken from the environment so the test can point it at a live server.
const axios = require('axios');
class SecureVisionClient {
  constructor(baseUrl = 'http://localhost:8000', token = null) {
    this.baseUrl = baseUrl;
    this.headers = {};
    if (token) {
      this.headers['Authorization'] = `Bearer ${token}`;
    }
  }
  async getHealth() {
    const response = await axios.get(`${this.baseUrl}/health`);
    return response.data;
  }
  async getEvents(options = {}) {
    const { type, since, limit = 100 } = options;
    const params = { limit };
    if (type) params.type = type;
    if (since) params.since = since;
    const response = await axios.get(`${this.baseUrl}/events`, {
      headers: this.headers,
      params
    });
    return response.data;
  }
  async getRecentFaceMatches(minutes = 5) {
    const since = Date.now() - minutes * 60 * 1000;
    return this.getEvents({ type: 'face_match', since });
  }
  async getRecentPlateReads(minutes = 5) {
    const since = Date.now() - minutes * 60 * 1000;
    return this.getEvents({ type: 'plate_read', since });
  }
  async cleanupOldEvents() {
    const response = await axios.post(`${this.baseUrl}/cleanup`, null, {
      headers: this.headers
    });
    return response.data;
  }
}
// Usage
const client = new SecureVisionClient(process.env.BASE_URL, 'your-token-here');
(async () => {
  // Check health
  const health = await client.getHealth();
  console.log(`System OK: ${health.ok}`);
  // Get recent faces
  const faces = await client.getRecentFaceMatches(10);
  faces.forEach(event => {
    const { person_name, similarity } = event.payload;
    console.log(`Face: ${person_name} (similarity: ${similarity.toFixed(2)})`);
  });
  // Get recent plates
  const plates = await client.getRecentPlateReads(10);
  plates.forEach(event => {
    const { plate_text, list_match } = event.payload;
    console.log(`Plate: ${plate_text} (${list_match || 'unknown'})`);
  });
  const cleanup = await client.cleanupOldEvents();
  console.log(`Cleanup: ${JSON.stringify(cleanup)}`);
})();
