// The official MCP TypeScript SDK as a stateless Streamable HTTP server, written the way the
// SDK's examples/server/simpleStatelessStreamableHttp.js does it: a new McpServer and a new
// transport (sessionIdGenerator: undefined) for every POST, closed when the response closes.
// The SDK 1.x speaks the 2025 protocol, so clients call tools/call directly with
// MCP-Protocol-Version: 2025-11-25 (no initialize: a stateless transport accepts requests
// without one). Serves the conformance tool test_simple_text and
// `echo` {text} (the tool of bench/echo_connector.cpp, for the worker runs).
//   node ts-stateless.mjs --port 3001
import * as z from 'zod/v4';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createMcpExpressApp } from '@modelcontextprotocol/sdk/server/express.js';

const portIndex = process.argv.indexOf('--port');
const PORT = portIndex > 0 ? Number(process.argv[portIndex + 1]) : 3001;

function getServer() {
  const server = new McpServer({ name: 'ts-sdk-bench-stateless', version: '1.0.0' });
  server.registerTool('test_simple_text', { description: 'Returns a simple text content block' }, async () => ({
    content: [{ type: 'text', text: 'This is a simple text response for testing.' }]
  }));
  // Declared with a schema as the SDK's examples do, so the SDK validates the arguments just as
  // mcphost validates them against the connector's inputSchema.
  server.registerTool('echo', { description: 'Returns its text unchanged.', inputSchema: { text: z.string() } },
    async ({ text }) => ({ content: [{ type: 'text', text }] }));
  return server;
}

const app = createMcpExpressApp();

app.post('/mcp', async (req, res) => {
  const server = getServer();
  try {
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
    res.on('close', () => {
      transport.close();
      server.close();
    });
  } catch (error) {
    console.error('Error handling MCP request:', error);
    if (!res.headersSent) {
      res.status(500).json({ jsonrpc: '2.0', error: { code: -32603, message: 'Internal server error' }, id: null });
    }
  }
});

const notAllowed = (req, res) => {
  res.writeHead(405).end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message: 'Method not allowed.' }, id: null }));
};
app.get('/mcp', notAllowed);
app.delete('/mcp', notAllowed);
app.get('/healthz', (req, res) => { res.send('ok\n'); });

app.listen(PORT, '127.0.0.1', (error) => {
  if (error) {
    console.error('Failed to start server:', error);
    process.exit(1);
  }
  console.log(`ts-stateless listening on http://127.0.0.1:${PORT}/mcp`);
});
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
