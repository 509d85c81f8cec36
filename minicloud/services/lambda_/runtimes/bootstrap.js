// minicloud's Lambda runtime client for Node.js: the standard library only.
//
// Loads the handler named by _HANDLER ("file.function", the file relative to /var/task, .js, .mjs or
// .cjs), then loops on the Runtime API: GET /invocation/next, call the handler (async, or with a
// callback), POST .../response or .../error. Errors are reported as AWS's Node.js runtime reports them
// ({errorType, errorMessage, trace}); a handler that cannot be loaded answers every invocation with
// Runtime.ImportModuleError, Runtime.HandlerNotFound, Runtime.MalformedHandlerName or
// Runtime.UserCodeSyntaxError.
"use strict";

const http = require("http");
const fs = require("fs");
const path = require("path");
const { pathToFileURL } = require("url");

const [HOST, PORT] = process.env.AWS_LAMBDA_RUNTIME_API.split(":");
const API = "/2018-06-01/runtime";
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function call(method, urlPath, body, headers) {
  return new Promise((resolve, reject) => {
    const request = http.request({ host: HOST, port: Number(PORT), method, path: API + urlPath, agent,
      headers: Object.assign({}, headers || {}, body ? { "Content-Length": Buffer.byteLength(body) } : {}) },
      (response) => {
        const chunks = [];
        response.on("data", (c) => chunks.push(c));
        response.on("end", () => resolve({ headers: response.headers, body: Buffer.concat(chunks) }));
      });
    request.on("error", reject);
    request.end(body || undefined);
  });
}

class Fault extends Error {
  constructor(errorType, message) {
    super(message);
    this.errorType = errorType;
  }
}

function errorDocument(error) {
  if (error instanceof Fault) {
    return { errorType: error.errorType, errorMessage: error.message, trace: [] };
  }
  if (error instanceof Error) {
    return { errorType: error.name || "Error", errorMessage: error.message,
      trace: String(error.stack || "").split("\n") };
  }
  return { errorType: "string", errorMessage: String(error), trace: [] };
}

async function loadHandler(spec) {
  const taskRoot = process.env.LAMBDA_TASK_ROOT || "/var/task";
  const dot = spec.lastIndexOf(".");
  if (dot < 1) throw new Fault("Runtime.MalformedHandlerName", `Bad handler ${spec}`);
  const modulePath = spec.slice(0, dot);
  const name = spec.slice(dot + 1);
  let file = null;
  for (const ext of [".js", ".mjs", ".cjs"]) {
    if (fs.existsSync(path.join(taskRoot, modulePath + ext))) { file = path.join(taskRoot, modulePath + ext); break; }
  }
  if (file === null) {
    throw new Fault("Runtime.ImportModuleError",
      `Error: Cannot find module '${modulePath}'\nRequire stack:\n- /var/runtime/bootstrap.js`);
  }
  let module;
  try {
    if (file.endsWith(".mjs")) {
      module = await import(pathToFileURL(file).href);
    } else {
      try {
        module = require(file);
      } catch (error) {
        if (error && error.code === "ERR_REQUIRE_ESM") module = await import(pathToFileURL(file).href);
        else throw error;
      }
    }
  } catch (error) {
    if (error instanceof SyntaxError) throw new Fault("Runtime.UserCodeSyntaxError", `${error.name}: ${error.message}`);
    if (error && error.code === "MODULE_NOT_FOUND") throw new Fault("Runtime.ImportModuleError", `Error: ${error.message}`);
    throw error;
  }
  const handler = module[name] !== undefined ? module[name] : (module.default || {})[name];
  if (handler === undefined) throw new Fault("Runtime.HandlerNotFound", `${spec} is undefined or not exported`);
  if (typeof handler !== "function") throw new Fault("Runtime.HandlerNotFound", `${spec} is not a function`);
  return handler;
}

function runHandler(handler, event, context) {
  return new Promise((resolve, reject) => {
    let settled = false;
    const callback = (error, result) => {
      if (settled) return;
      settled = true;
      if (error !== undefined && error !== null) reject(error); else resolve(result);
    };
    try {
      const returned = handler(event, context, callback);
      if (returned && typeof returned.then === "function") {
        returned.then((value) => callback(null, value), (error) => callback(error === undefined ? new Error("undefined") : error));
      } else if (handler.length < 3) {
        callback(null, returned);
      }
    } catch (error) {
      callback(error);
    }
  });
}

async function main() {
  let handler = null;
  let fault = null;
  try {
    handler = await loadHandler(process.env._HANDLER || "");
  } catch (error) {
    fault = error;
    const doc = errorDocument(error);
    console.error(`${new Date().toISOString()}\tundefined\tERROR\t${JSON.stringify(doc)}`);
  }
  for (;;) {
    const next = await call("GET", "/invocation/next");
    const h = next.headers;
    const requestId = h["lambda-runtime-aws-request-id"];
    const deadline = Number(h["lambda-runtime-deadline-ms"] || 0);
    process.env._X_AMZN_TRACE_ID = h["lambda-runtime-trace-id"] || "";
    const context = {
      awsRequestId: requestId,
      invokedFunctionArn: h["lambda-runtime-invoked-function-arn"],
      functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
      functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
      memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
      logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
      logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
      clientContext: h["lambda-runtime-client-context"] ? JSON.parse(h["lambda-runtime-client-context"]) : undefined,
      identity: h["lambda-runtime-cognito-identity"] ? JSON.parse(h["lambda-runtime-cognito-identity"]) : undefined,
      callbackWaitsForEmptyEventLoop: true,
      getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    };
    try {
      if (fault !== null) throw fault;
      const event = next.body.length ? JSON.parse(next.body.toString("utf8")) : {};
      const result = await runHandler(handler, event, context);
      const body = result === undefined ? "null" : JSON.stringify(result);
      await call("POST", `/invocation/${requestId}/response`, body, { "Content-Type": "application/json" });
    } catch (error) {
      const doc = errorDocument(error);
      if (fault === null) console.error(`${new Date().toISOString()}\t${requestId}\tERROR\tInvoke Error \t${JSON.stringify(doc)}`);
      await call("POST", `/invocation/${requestId}/error`, JSON.stringify(doc),
        { "Content-Type": "application/json", "Lambda-Runtime-Function-Error-Type": doc.errorType });
    }
  }
}

// The first process of its container: without a handler it would ignore SIGTERM (PID 1).
process.on("SIGTERM", () => process.exit(0));

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
