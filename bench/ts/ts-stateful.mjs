// The official MCP TypeScript SDK as a stateful (session) Streamable HTTP server, written the
// way the SDK's examples/server/simpleStreamableHttp.js does it (one McpServer + transport per
// session, looked up by Mcp-Session-Id), minus the console logging and the optional event
// store, so the SDK runs at its fastest. Serves the conformance tool test_simple_text and
// `echo` {text} (the tool of bench/echo_connector.cpp, for the worker runs).
//   node ts-stateful.mjs --port 3000
import { randomUUID } from 'node:crypto';
import * as z from 'zod/v4';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createMcpExpressApp } from '@modelcontextprotocol/sdk/server/express.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';

const portIndex = process.argv.indexOf('--port');
const PORT = portIndex > 0 ? Number(process.argv[portIndex + 1]) : 3000;

function getServer() {
  const server = new McpServer({ name: 'ts-sdk-bench-stateful', version: '1.0.0' });
  server.registerTool('test_simple_text', { description: 'Returns a simple text content block' }, async () => ({
    content: [{ type: 'text', text: 'This is a simple text response for testing.' }]
  }));
  // Declared with a schema as the SDK's examples do, so the SDK validates the arguments just as
  // mcphost validates them against the connector's inputSchema.
  server.registerTool('echo', { description: 'Returns its text unchanged.', inputSchema: { text: z.string() } },
    async ({ text }) => ({ content: [{ type: 'text', text }] }));
  return server;
}

const transports = new Map();
const app = createMcpExpressApp();

app.post('/mcp', async (req, res) => {
  const sessionId = req.headers['mcp-session-id'];
  try {
    let transport = sessionId ? transports.get(sessionId) : undefined;
    if (!transport) {
      if (sessionId) {
        res.status(404).json({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null });
        return;
      }
      if (!isInitializeRequest(req.body)) {
        res.status(400).json({ jsonrpc: '2.0', error: { code: -32000, message: 'Bad Request: No valid session ID provided' }, id: null });
        return;
      }
      transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => { transports.set(id, transport); }
      });
      transport.onclose = () => {
        if (transport.sessionId) transports.delete(transport.sessionId);
      };
      await getServer().connect(transport);
    }
    await transport.handleRequest(req, res, req.body);
  } catch (error) {
    console.error('Error handling MCP request:', error);
    if (!res.headersSent) {
      res.status(500).json({ jsonrpc: '2.0', error: { code: -32603, message: 'Internal server error' }, id: null });
    }
  }
});

const sessionRequest = async (req, res) => {
  const transport = transports.get(req.headers['mcp-session-id']);
  if (!transport) {
    res.status(404).json({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null });
    return;
  }
  await transport.handleRequest(req, res);
};
app.get('/mcp', sessionRequest);
app.delete('/mcp', sessionRequest);
app.get('/healthz', (req, res) => { res.send('ok\n'); });

app.listen(PORT, '127.0.0.1', (error) => {
  if (error) {
    console.error('Failed to start server:', error);
    process.exit(1);
  }
  console.log(`ts-stateful listening on http://127.0.0.1:${PORT}/mcp`);
});
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
