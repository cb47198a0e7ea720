// The parent proxy of the seed incident, built the way the article's index.js is: one child process per version,
// every request proxied with http.get through ONE keep-alive agent limited to one socket per child, routed by
// ?version=. Only what a benchmark needs differs: the ports are free ones picked at start instead of
// 3000/3001/8000, everything is on 127.0.0.1 instead of localhost, the child's path comes from $SEED_CHILD, and the
// proxy's own start line says "proxy" so it cannot be mistaken for a child's (they share stdout).
const cp = require('child_process')
const url = require('url')
const http = require('http')
const net = require('net')

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address()
      probe.close(() => resolve(port))
    })
  })
}

async function main() {
  const port1 = await freePort()
  const port2 = await freePort()

  const child1 = cp.fork(process.env.SEED_CHILD, [], {
    env: {PORT: port1},
  })
  const child2 = cp.fork(process.env.SEED_CHILD, [], {
    env: {PORT: port2},
  })

  function afterChildrenReady() {
    let readyN = 0
    let _resolve

    const p = new Promise((resolve) => {
      _resolve = resolve
    })

    const onReady = (msg) => {
      if (msg === 'ready') {
        if (++readyN === 2) {
          _resolve()
        }
      }
    }

    child1.on('message', onReady)
    child2.on('message', onReady)

    return p
  }

  const agent = new http.Agent({keepAlive: true, maxSockets: 1})

  const httpServer = http.createServer(function (req, res) {
    const query = url.parse(req.url, true).query

    if (query.version === 'v1') {
      http.get(`http://127.0.0.1:${port1}`, {agent}, (proxyRes) => {
        proxyRes.pipe(res)
      })
    } else {
      http.get(`http://127.0.0.1:${port2}`, {agent}, (proxyRes) => {
        proxyRes.pipe(res)
      })
    }
  })

  afterChildrenReady().then(() => {
    httpServer.listen(0, '127.0.0.1', () => console.log(`Start proxy server on ${httpServer.address().port}`))
  })
}

main()
