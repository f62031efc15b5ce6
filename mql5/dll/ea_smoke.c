/*
 * What the EA does with libzmq.dll, as a Windows console program: load the DLL by name the way the terminal
 * loads MQL5\Libraries\libzmq.dll, call the functions of the EA's `#import "libzmq.dll"` block (Zmq.mqh) with
 * the types MQL5 passes them, and hold one lock-step conversation with a bridge.
 *
 *   ea_smoke.exe [--wait-ms=N] ENDPOINT IDENTITY SERVER_KEY|- REQUEST_FILE REPLY_FILE [REQUEST_FILE REPLY_FILE ...]
 *
 * Each request file holds one frame (UTF-8 JSON); the one frame received for it is written to its reply file.
 * Every send and receive waits at most N ms (default 10000: far above any deadline, below the test's timeout).
 * SERVER_KEY is the bridge's Z85 CURVE public key, or "-" for a plain connection; with a key the program makes
 * its own key pair with zmq_curve_keypair, as the EA does when it is given none. It prints what it learnt about
 * the DLL as key=value lines and exits 0 when every request got its reply, non-zero with the reason otherwise.
 *
 * The types are MQL5's, not zmq.h's: MQL5 `long` is a 64-bit integer that carries the context and socket
 * pointers, `ulong` carries size_t, `int` is a 32-bit int, `uchar &a[]` arrives as a pointer to the array's
 * bytes, and the EA hands every string (endpoint, identity, keys, capability) over as such a byte array:
 * ANSI, zero-terminated. If a declaration of the EA disagrees with what the DLL does, this is where it shows.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>

/* The EA's #import block, one pointer type per function, in its order. */
typedef int64_t (*zmq_ctx_new_t)(void);                                      /* long zmq_ctx_new()         */
typedef int (*zmq_ctx_term_t)(int64_t context);                              /* int  zmq_ctx_term(long)    */
typedef int64_t (*zmq_socket_t)(int64_t context, int type);                  /* long zmq_socket(long,int)  */
typedef int (*zmq_close_t)(int64_t socket);                                  /* int  zmq_close(long)       */
typedef int (*zmq_setsockopt_t)(int64_t socket, int option, const uint8_t *optval, uint64_t optvallen);
typedef int (*zmq_connect_t)(int64_t socket, const uint8_t *endpoint);
typedef int (*zmq_send_t)(int64_t socket, const uint8_t *buf, uint64_t len, int flags);
typedef int (*zmq_recv_t)(int64_t socket, uint8_t *buf, uint64_t len, int flags);
typedef int (*zmq_errno_t)(void);
typedef void (*zmq_version_t)(int *major, int *minor, int *patch);
typedef int (*zmq_has_t)(const uint8_t *capability);
typedef int (*zmq_curve_keypair_t)(uint8_t *z85_public_key, uint8_t *z85_secret_key);

static zmq_ctx_new_t zmq_ctx_new;
static zmq_ctx_term_t zmq_ctx_term;
static zmq_socket_t zmq_socket;
static zmq_close_t zmq_close;
static zmq_setsockopt_t zmq_setsockopt;
static zmq_connect_t zmq_connect;
static zmq_send_t zmq_send;
static zmq_recv_t zmq_recv;
static zmq_errno_t zmq_errno;
static zmq_version_t zmq_version;
static zmq_has_t zmq_has;
static zmq_curve_keypair_t zmq_curve_keypair;

/* The values of Zmq.mqh (from zmq.h) */
#define ZMQ_DEALER 5
#define ZMQ_ROUTING_ID 5
#define ZMQ_LINGER 17
#define ZMQ_RECONNECT_IVL 18
#define ZMQ_RECONNECT_IVL_MAX 21
#define ZMQ_SNDHWM 23
#define ZMQ_RCVHWM 24
#define ZMQ_RCVTIMEO 27
#define ZMQ_SNDTIMEO 28
#define ZMQ_IMMEDIATE 39
#define ZMQ_CURVE_PUBLICKEY 48
#define ZMQ_CURVE_SECRETKEY 49
#define ZMQ_CURVE_SERVERKEY 50
#define ZMQ_DONTWAIT 1
#define ZMQ_Z85_KEY_CHARS 40
#define ZMQ_RECEIVE_BUFFER 65536


static void fail(const char *what)
{
    fprintf(stderr, "ea_smoke: %s (zmq errno %d)\n", what, zmq_errno ? zmq_errno() : 0);
    exit(1);
}

static void *must_find(HMODULE dll, const char *name)
{
    void *fn = (void *)GetProcAddress(dll, name);
    if (!fn) {
        fprintf(stderr, "ea_smoke: libzmq.dll exports no %s: the EA's #import would fail on it\n", name);
        exit(1);
    }
    return fn;
}

/* An int option as the EA sends it: 4 little-endian bytes in a uchar array. */
static int int_option(int64_t socket, int option, int value)
{
    uint8_t bytes[4] = {(uint8_t)(value & 0xFF), (uint8_t)((value >> 8) & 0xFF), (uint8_t)((value >> 16) & 0xFF),
                        (uint8_t)((value >> 24) & 0xFF)};
    return zmq_setsockopt(socket, option, bytes, 4);
}

static uint8_t *read_file(const char *path, long *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "ea_smoke: cannot read %s\n", path);
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    *size = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *data = malloc((size_t)*size + 1);
    if (!data || fread(data, 1, (size_t)*size, f) != (size_t)*size) {
        fprintf(stderr, "ea_smoke: cannot read %s\n", path);
        exit(2);
    }
    fclose(f);
    return data;
}

int main(int argc, char **argv)
{
    int wait_ms = 10000;
    if (argc > 1 && strncmp(argv[1], "--wait-ms=", 10) == 0) {
        wait_ms = atoi(argv[1] + 10);
        argv++;
        argc--;
    }
    if (argc < 6 || (argc - 4) % 2 != 0 || wait_ms <= 0) {
        fprintf(stderr,
                "usage: ea_smoke.exe [--wait-ms=N] ENDPOINT IDENTITY SERVER_KEY[:CLIENT_PUBLIC:CLIENT_SECRET]|- "
                "REQUEST_FILE REPLY_FILE ...\n");
        return 2;
    }
    const char *endpoint = argv[1], *identity = argv[2], *server_key = argv[3];

    /* By name, as the terminal does: the program's own folder is searched first, like MQL5\Libraries. */
    HMODULE dll = LoadLibraryA("libzmq.dll");
    if (!dll) {
        /* 126: a DLL it depends on is missing; 193: not a 64-bit DLL */
        fprintf(stderr, "ea_smoke: cannot load libzmq.dll: Windows error %lu\n", (unsigned long)GetLastError());
        return 1;
    }
    zmq_ctx_new = (zmq_ctx_new_t)must_find(dll, "zmq_ctx_new");
    zmq_ctx_term = (zmq_ctx_term_t)must_find(dll, "zmq_ctx_term");
    zmq_socket = (zmq_socket_t)must_find(dll, "zmq_socket");
    zmq_close = (zmq_close_t)must_find(dll, "zmq_close");
    zmq_setsockopt = (zmq_setsockopt_t)must_find(dll, "zmq_setsockopt");
    zmq_connect = (zmq_connect_t)must_find(dll, "zmq_connect");
    zmq_send = (zmq_send_t)must_find(dll, "zmq_send");
    zmq_recv = (zmq_recv_t)must_find(dll, "zmq_recv");
    zmq_errno = (zmq_errno_t)must_find(dll, "zmq_errno");
    zmq_version = (zmq_version_t)must_find(dll, "zmq_version");
    zmq_has = (zmq_has_t)must_find(dll, "zmq_has");
    zmq_curve_keypair = (zmq_curve_keypair_t)must_find(dll, "zmq_curve_keypair");

    int major = 0, minor = 0, patch = 0;
    zmq_version(&major, &minor, &patch);
    printf("version=%d.%d.%d\n", major, minor, patch);
    printf("has_curve=%d\n", zmq_has((const uint8_t *)"curve"));

    int64_t context = zmq_ctx_new();
    if (context == 0)
        fail("zmq_ctx_new failed");
    int64_t socket = zmq_socket(context, ZMQ_DEALER);
    if (socket == 0)
        fail("zmq_socket failed");
    /* The EA's options, in its order (CZmqDealer::Open) */
    if (int_option(socket, ZMQ_LINGER, 0) || int_option(socket, ZMQ_IMMEDIATE, 1) ||
        int_option(socket, ZMQ_RCVTIMEO, 0) || int_option(socket, ZMQ_SNDTIMEO, 0) ||
        int_option(socket, ZMQ_SNDHWM, 1000) || int_option(socket, ZMQ_RCVHWM, 1000) ||
        int_option(socket, ZMQ_RECONNECT_IVL, 500) || int_option(socket, ZMQ_RECONNECT_IVL_MAX, 5000))
        fail("zmq_setsockopt of an int option failed");
    if (zmq_setsockopt(socket, ZMQ_ROUTING_ID, (const uint8_t *)identity, strlen(identity)))
        fail("zmq_setsockopt ZMQ_ROUTING_ID failed");
    if (strcmp(server_key, "-") != 0) {
        /* Keys travel as zero-terminated uchar arrays, 41 bytes with the zero, as the EA passes them. The
         * client's own pair is the one `mt5bridge keygen --client` made (the bridge lets in only the keys it
         * lists); without one, a fresh pair stands for a client the bridge does not know. */
        uint8_t public_key[ZMQ_Z85_KEY_CHARS + 1], secret_key[ZMQ_Z85_KEY_CHARS + 1], server[ZMQ_Z85_KEY_CHARS + 1];
        size_t given = strlen(server_key);
        if (given == ZMQ_Z85_KEY_CHARS) {
            if (zmq_curve_keypair(public_key, secret_key))
                fail("zmq_curve_keypair failed");
        } else if (given == 3 * ZMQ_Z85_KEY_CHARS + 2 && server_key[ZMQ_Z85_KEY_CHARS] == ':' &&
                   server_key[2 * ZMQ_Z85_KEY_CHARS + 1] == ':') {
            memcpy(public_key, server_key + ZMQ_Z85_KEY_CHARS + 1, ZMQ_Z85_KEY_CHARS);
            memcpy(secret_key, server_key + 2 * ZMQ_Z85_KEY_CHARS + 2, ZMQ_Z85_KEY_CHARS);
            public_key[ZMQ_Z85_KEY_CHARS] = secret_key[ZMQ_Z85_KEY_CHARS] = 0;
        } else {
            fail("the keys are not SERVER or SERVER:CLIENT_PUBLIC:CLIENT_SECRET, 40 Z85 characters each");
        }
        memcpy(server, server_key, ZMQ_Z85_KEY_CHARS);
        server[ZMQ_Z85_KEY_CHARS] = 0;
        if (zmq_setsockopt(socket, ZMQ_CURVE_SERVERKEY, server, ZMQ_Z85_KEY_CHARS + 1) ||
            zmq_setsockopt(socket, ZMQ_CURVE_PUBLICKEY, public_key, ZMQ_Z85_KEY_CHARS + 1) ||
            zmq_setsockopt(socket, ZMQ_CURVE_SECRETKEY, secret_key, ZMQ_Z85_KEY_CHARS + 1))
            fail("zmq_setsockopt of a CURVE key failed");
        printf("curve_client_key=%.40s\n", (const char *)public_key);
    }
    if (zmq_connect(socket, (const uint8_t *)endpoint))
        fail("zmq_connect failed");

    /* The EA reads "no message yet" as errno 11 (EAGAIN of Microsoft's C runtime): this DLL must say the same. */
    static uint8_t buffer[ZMQ_RECEIVE_BUFFER];
    if (zmq_recv(socket, buffer, ZMQ_RECEIVE_BUFFER, ZMQ_DONTWAIT) >= 0)
        fail("a frame arrived before anything was sent");
    printf("eagain=%d\n", zmq_errno());
    fflush(stdout);

    for (int i = 4; i + 1 < argc; i += 2) {
        long size = 0;
        uint8_t *request = read_file(argv[i], &size);
        /* The EA waits for a live connection to take the frame, at most its deadline */
        if (int_option(socket, ZMQ_SNDTIMEO, wait_ms) || zmq_send(socket, request, (uint64_t)size, 0) < 0)
            fail("zmq_send failed: no connection to the bridge took the frame");
        free(request);
        if (int_option(socket, ZMQ_RCVTIMEO, wait_ms))
            fail("zmq_setsockopt ZMQ_RCVTIMEO failed");
        int n = zmq_recv(socket, buffer, ZMQ_RECEIVE_BUFFER, 0);
        if (n < 0) {
            fprintf(stderr, "ea_smoke: no reply to %s within %d ms (zmq errno %d)\n", argv[i], wait_ms, zmq_errno());
            return 3;
        }
        if (n > ZMQ_RECEIVE_BUFFER)
            fail("a reply larger than the EA's receive buffer");
        FILE *out = fopen(argv[i + 1], "wb");
        if (!out || fwrite(buffer, 1, (size_t)n, out) != (size_t)n || fclose(out))
            fail("cannot write the reply file");
        printf("reply=%s bytes=%d\n", argv[i + 1], n);
        fflush(stdout);
    }

    if (zmq_close(socket))
        fail("zmq_close failed");
    if (zmq_ctx_term(context))
        fail("zmq_ctx_term failed");
    printf("closed=1\n");
    return 0;
}
