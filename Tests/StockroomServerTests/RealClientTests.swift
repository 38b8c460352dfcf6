import Foundation
import Testing

/// The Redis tools and clients people already have, unchanged, against the service.
/// `make test` installs them (redis-tools from Debian, redis-py into .build/venv).
@Suite("Real Redis clients")
struct RealClientTests {
    @Test func redisCliOneShotAndPipe() async throws {
        try await TestServer.with { server in
            let id = try await server.product(sku: "CLI-1")
            let get = try await run("redis-cli", ["-p", "\(server.port)", "PRODUCT.GET", "\(id)"])
            #expect(get.status == 0)
            #expect(get.output.contains("\"sku\":\"CLI-1\""))
            let missing = try await run("redis-cli", ["-p", "\(server.port)", "PRODUCT.GET", "999999"])
            #expect(missing.output.contains("NOTFOUND"))

            // --pipe sends RESP from standard input and counts the replies.
            let commands = (0..<100).map { n in "*2\r\n$4\r\nECHO\r\n$\("\(n)".count)\r\n\(n)\r\n" }.joined() + "*2\r\n$11\r\nPRODUCT.GET\r\n$\("\(id)".count)\r\n\(id)\r\n"
            let pipe = try await run("redis-cli", ["-p", "\(server.port)", "--pipe"], input: commands)
            #expect(pipe.status == 0)
            #expect(pipe.output.contains("errors: 0, replies: 101"), "\(pipe.output)")
        }
    }

    @Test(arguments: [2, 3])
    func redisPy(protocolVersion: Int) async throws {
        let python = TestServer.root.appendingPathComponent(".build/venv/bin/python").path
        try #require(FileManager.default.isExecutableFile(atPath: python), "redis-py is missing: run `make test` (it creates .build/venv)")
        try await TestServer.with { server in
            let script = """
                import json, sys, redis
                r = redis.Redis(host="127.0.0.1", port=\(server.port), protocol=\(protocolVersion), decode_responses=True)
                assert r.ping() is True
                r.execute_command("USER.REGISTER", json.dumps({"email": "py@example.com", "name": "Py Thon", "password": "password123"}))
                login = json.loads(r.execute_command("SESSION.LOGIN", json.dumps({"email": "py@example.com", "password": "password123"})))
                assert len(login["token"]) >= 43, login
                assert json.loads(r.execute_command("WHOAMI"))["email"] == "py@example.com"
                try:
                    r.execute_command("ORDER.GET", "999999")
                    sys.exit("expected an error")
                except redis.exceptions.ResponseError as error:
                    assert str(error).startswith("NOTFOUND"), error
                pipe = r.pipeline(transaction=False)
                for n in range(50):
                    pipe.echo(str(n))
                assert pipe.execute() == [str(n) for n in range(50)]
                print("ok", r.connection_pool.connection_kwargs.get("protocol"))
                """
            let result = try await run(python, ["-c", script])
            #expect(result.status == 0, "\(result.output)")
            #expect(result.output.contains("ok"))
        }
    }

    @Test(arguments: [2, 3])
    func redisPyPubSub(protocolVersion: Int) async throws {
        let python = TestServer.root.appendingPathComponent(".build/venv/bin/python").path
        try #require(FileManager.default.isExecutableFile(atPath: python), "redis-py is missing: run `make test` (it creates .build/venv)")
        try await TestServer.with { server in
            let product = try await server.product(stock: 100)
            let user = try await server.register()
            // redis-py logs in on each of its connections (AUTH, or HELLO 3 AUTH): pubsub()
            // takes a connection of its own.
            let script = """
                import json, time, redis
                r = redis.Redis(host="127.0.0.1", port=\(server.port), protocol=\(protocolVersion), decode_responses=True,
                                username="\(user.email)", password="password123")
                p = r.pubsub()
                p.subscribe("order.placed")
                p.psubscribe("order.*")
                kinds = [p.get_message(timeout=5)["type"] for _ in range(2)]
                assert kinds == ["subscribe", "psubscribe"], kinds
                order = json.loads(r.execute_command("ORDER.PLACE", json.dumps({"lines": [{"product_id": \(product), "quantity": 1}]})))
                got = {}
                deadline = time.time() + 10
                while len(got) < 2 and time.time() < deadline:
                    m = p.get_message(timeout=1)
                    if m:
                        got[m["type"]] = m
                assert got["message"]["channel"] == "order.placed", got
                event = json.loads(got["message"]["data"])
                assert event["type"] == "order.placed" and event["data"] == order, event
                assert got["pmessage"]["pattern"] == "order.*" and json.loads(got["pmessage"]["data"])["id"] == event["id"], got
                print("ok", event["id"])
                """
            let result = try await run(python, ["-c", script])
            #expect(result.status == 0, "\(result.output)")
            #expect(result.output.contains("ok"))
        }
    }

    @Test func redisCliSubscribe() async throws {
        try await TestServer.with { server in
            let product = try await server.product(stock: 100)
            let user = try await server.register()
            let listening = Task {
                try await run("timeout", ["-s", "KILL", "6", "redis-cli", "-p", "\(server.port)", "--user", user.email, "--pass", "password123", "--no-auth-warning", "SUBSCRIBE", "order.placed"])
            }
            // Orders until one is heard: redis-cli needs a moment to connect and subscribe.
            var orders: [Int] = []
            try await server.client { (client: TestClient) async throws -> Void in
                try await server.logIn(client, as: user)
                for _ in 0..<8 {
                    try await Task.sleep(for: .milliseconds(500))
                    orders.append(try await client.call("ORDER.PLACE", #"{"lines":[{"product_id":\#(product),"quantity":1}]}"#).json()["id"] as! Int)
                }
            }
            let output = try await listening.value.output
            #expect(output.contains("subscribe\norder.placed\n1"), "\(output)")
            #expect(output.contains("message\norder.placed\n{"), "\(output)")
            #expect(orders.contains { output.contains("\"subject_id\":\($0)") }, "\(output)")
        }
    }

    @Test func redisBenchmarkRunsWithoutErrors() async throws {
        try await TestServer.with { server in
            // redis-benchmark fills __rand_int__ with 12 zero-padded digits below -r.
            try await server.client { (admin: TestClient) async throws -> Void in
                try await server.logIn(admin, admin: true)
                for n in 0..<20 {
                    let sku = "BENCH-" + String(repeating: "0", count: 12 - "\(n)".count) + "\(n)"
                    let reply = try await admin.call("PRODUCT.CREATE", #"{"sku":"\#(sku)","name":"Bench \#(n)","price_cents":100,"currency":"EUR","stock":1000}"#)
                    #expect(reply.errorCode == nil, "\(reply)")
                }
            }
            let result = try await run("redis-benchmark", ["-p", "\(server.port)", "-c", "8", "-n", "2000", "-r", "20", "-q", "PRODUCT.GET", "SKU", "BENCH-__rand_int__"])
            #expect(result.status == 0)
            #expect(result.output.contains("requests per second"), "\(result.output)")
            #expect(!result.output.contains("ERR") && !result.output.contains("NOTFOUND"), "\(result.output)")
        }
    }
}

/// Runs a program to completion without blocking a thread of the cooperative pool (the
/// server under test needs those): the program runs, and its output is read, on a thread
/// of its own, with plain blocking reads.
///
/// Not `FileHandle.readabilityHandler`: its Dispatch read source, torn down while other
/// tests do the same, crashed the whole test process (SIGSEGV in libdispatch's
/// `_dispatch_event_loop_drain`; swift-corelibs-libdispatch issue 949). A blocking read
/// never registers the pipe with Dispatch's event loop.
func run(_ program: String, _ arguments: [String], input: String? = nil) async throws -> (status: Int32, output: String) {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread {
            continuation.resume(with: Result { try runToEnd(program, arguments, input: input) })
        }
    }
}

private func runToEnd(_ program: String, _ arguments: [String], input: String?) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [program] + arguments
    let output = Pipe()
    process.standardOutput = output
    process.standardError = output
    let stdin = Pipe()
    process.standardInput = stdin
    try process.run()
    // Input from another thread: a program that answers before it has read all of it
    // could otherwise fill the output pipe while this thread still writes.
    let writer = stdin.fileHandleForWriting
    Thread.detachNewThread {
        if let input { try? writer.write(contentsOf: Data(input.utf8)) }
        try? writer.close()
    }
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}
