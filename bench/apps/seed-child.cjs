// child.js from the seed incident (shared/seed/nodejs-grayscale-oom.md), verbatim: it answers every request
// after one second, listens on $PORT and sends 'ready' over IPC when it does.
const http = require('http')

const httpServer = http.createServer(function (req, res) {
  res.writeHead(200, {'Content-Type': 'text/plain'})
  setTimeout(() => {
    res.end('handled by child, pid is ' + process.pid + '\n')
  }, 1000)
})

httpServer.listen(process.env.PORT, () => {
  process.send && process.send('ready')
  console.log(`Start http server on ${process.env.PORT}`)
})
