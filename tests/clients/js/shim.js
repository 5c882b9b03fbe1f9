// Starts the real `host-shim` binary (built by `make`) for the JS client
// tests: a temporary data directory, a free loopback port; `stop` ends it.
'use strict';

const {spawn} = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..', '..');
const BINARY = process.env.SWITCHBOARD_SHIM || path.join(ROOT, 'target', 'debug', 'host-shim');

async function startShim() {
    const data = fs.mkdtempSync(path.join(os.tmpdir(), 'switchboard-js-'));
    fs.writeFileSync(path.join(data, 'config.json'), JSON.stringify({
        ServiceSettings: {ListenAddress: '127.0.0.1:0'},
    }));
    const child = spawn(BINARY, ['--data', data, '--manifest', path.join(ROOT, 'manifest.json')], {
        env: {...process.env, RUST_LOG: 'warn'},
        stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    const url = await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the shim did not start:\n' + log)), 300000);
        const onData = (chunk) => {
            log += chunk;
            const match = /listening on (http:\/\/[0-9.]+:\d+)/.exec(log);
            if (match) {
                clearTimeout(timer);
                resolve(match[1]);
            }
        };
        child.stdout.on('data', onData);
        child.stderr.on('data', (chunk) => {
            log += chunk;
        });
        child.on('exit', (code) => {
            clearTimeout(timer);
            reject(new Error(`the shim exited (${code}):\n${log}`));
        });
    });
    const token = fs.readFileSync(path.join(data, 'admin-token'), 'utf8').trim();
    return {
        url,
        token,
        teamName: 'switchboard',
        async stop() {
            child.removeAllListeners('exit');
            const exited = new Promise((resolve) => child.once('exit', resolve));
            child.kill('SIGINT');
            const timer = setTimeout(() => child.kill('SIGKILL'), 20000);
            await exited;
            clearTimeout(timer);
            fs.rmSync(data, {recursive: true, force: true});
        },
    };
}

module.exports = {startShim};
