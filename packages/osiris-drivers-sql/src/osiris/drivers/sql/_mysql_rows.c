/*
 * _mysql_rows: MySQL binary-protocol result rows to Arrow column buffers.
 *
 * The extractor runs a prepared statement (COM_STMT_EXECUTE) on a pymysql connection,
 * reads the column definitions with pymysql, then hands every further byte the server
 * sends to `RowParser.feed`. The parser splits the bytes into packets, decodes each
 * binary row straight into per-column buffers laid out as Arrow expects (validity
 * bitmap, fixed-width values, or int32 offsets plus data), and returns a batch each
 * time `batch_size` rows are complete. Python wraps the buffers with
 * `pyarrow.Array.from_buffers` without copying them again.
 *
 * No network code here: Python reads the socket (timeouts, TLS and interrupts stay
 * Python's), so this file is only packet framing and value decoding.
 *
 * Column kinds (decided in Python from the result's column definitions):
 *   FIX1/FIX2/FIX4/FIX8  integers, YEAR, FLOAT, DOUBLE: little-endian values copied as they are
 *   DEC128              DECIMAL text -> 128-bit unscaled integer at the column's scale
 *   DATE                -> int32 days since 1970-01-01
 *   DATETIME            DATETIME/TIMESTAMP -> int64 microseconds since 1970-01-01 00:00
 *   TIME                -> int64 signed microseconds
 *   BIT                 big-endian bytes -> uint64
 *   BYTES               every length-encoded value (strings, BLOBs, JSON, wide DECIMAL) -> offsets + data
 *   BOOL / BITBOOL      TINYINT(1) / BIT(1) -> Arrow's bit-packed booleans (non-zero is true)
 *   NULL                no value on the wire
 */
#define PY_SSIZE_T_CLEAN
/* The stable ABI of CPython 3.11: one build serves every later CPython (a sandbox's may differ). */
#define Py_LIMITED_API 0x030B0000
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <stdio.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "_mysql_rows assumes a little-endian host, as the MySQL protocol and Arrow buffers are"
#endif

enum { K_NULL = 0, K_FIX1, K_FIX2, K_FIX4, K_FIX8, K_DEC128, K_DATE, K_DATETIME, K_TIME, K_BIT, K_BYTES, K_BOOL, K_BITBOOL };

/* Flush a batch early once a column's variable-length data passes this (int32 offsets). */
#define MAX_VAR_BYTES ((size_t)1 << 30)
#define MAX_PACKET 0xFFFFFF

typedef struct {
    uint8_t *p;
    size_t len, cap;
} buf_t;

static int buf_reserve(buf_t *b, size_t extra) {
    size_t need = b->len + extra;
    if (need <= b->cap && b->p) /* allocated even for 0 bytes: memcpy never gets a NULL pointer */
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < need)
        cap += cap / 2 + 4096;
    uint8_t *p = PyMem_Realloc(b->p, cap);
    if (!p) {
        PyErr_NoMemory();
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

static void buf_free(buf_t *b) {
    PyMem_Free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

typedef struct {
    int kind, width, scale, precision, zero_null;
    buf_t validity, data, offsets;
    Py_ssize_t nulls;
    long long zero_dates;
} col_t;

typedef struct {
    PyObject_HEAD
    int ncols;
    col_t *cols;
    Py_ssize_t batch_size, rows;
    buf_t carry; /* bytes of a packet not yet complete */
    buf_t big;   /* payload of a row sent as several packets (16 MiB and more) */
    int in_big, done;
    long long total_rows;
    PyObject *error_packet; /* the server's ERR packet payload, for pymysql to raise */
    PyObject *bad_date;     /* (column index, text) of a date with no calendar value */
    PyObject *protocol_error;
} Parser;

static const uint8_t WIDTH[] = {0, 1, 2, 4, 8, 16, 4, 8, 8, 8, 0, 0, 0};

static int is_bool(int kind) { return kind == K_BOOL || kind == K_BITBOOL; }

/* ---- batches ------------------------------------------------------------------------- */

static int start_batch(Parser *self) {
    Py_ssize_t n = self->batch_size;
    for (int i = 0; i < self->ncols; i++) {
        col_t *c = &self->cols[i];
        c->validity.len = 0;
        c->data.len = 0;
        c->offsets.len = 0;
        c->nulls = 0;
        if (buf_reserve(&c->validity, (size_t)(n + 7) / 8))
            return -1;
        memset(c->validity.p, 0, (size_t)(n + 7) / 8);
        c->validity.len = (size_t)(n + 7) / 8;
        if (c->kind == K_BYTES) {
            if (buf_reserve(&c->offsets, (size_t)(n + 1) * 4))
                return -1;
            memset(c->offsets.p, 0, 4);
            c->offsets.len = 4;
        } else if (is_bool(c->kind)) {
            if (buf_reserve(&c->data, (size_t)(n + 7) / 8))
                return -1;
            memset(c->data.p, 0, (size_t)(n + 7) / 8);
        } else if (c->width) {
            if (buf_reserve(&c->data, (size_t)n * c->width))
                return -1;
        }
    }
    self->rows = 0;
    return 0;
}

static PyObject *bytes_or_none(const buf_t *b, size_t len) {
    return PyBytes_FromStringAndSize((const char *)b->p, (Py_ssize_t)len);
}

/* (rows, [(validity or None, data or None, offsets or None), ...]) */
static PyObject *take_batch(Parser *self) {
    Py_ssize_t n = self->rows;
    PyObject *cols = PyList_New(self->ncols);
    if (!cols)
        return NULL;
    for (int i = 0; i < self->ncols; i++) {
        col_t *c = &self->cols[i];
        PyObject *validity, *data, *offsets;
        if (c->nulls && c->kind != K_NULL)
            validity = bytes_or_none(&c->validity, (size_t)(n + 7) / 8);
        else
            validity = Py_NewRef(Py_None);
        if (c->kind == K_NULL)
            data = Py_NewRef(Py_None);
        else if (c->kind == K_BYTES)
            data = bytes_or_none(&c->data, c->data.len);
        else if (is_bool(c->kind))
            data = bytes_or_none(&c->data, (size_t)(n + 7) / 8);
        else
            data = bytes_or_none(&c->data, (size_t)n * c->width);
        offsets = c->kind == K_BYTES ? bytes_or_none(&c->offsets, (size_t)(n + 1) * 4) : Py_NewRef(Py_None);
        if (!validity || !data || !offsets) {
            Py_XDECREF(validity);
            Py_XDECREF(data);
            Py_XDECREF(offsets);
            Py_DECREF(cols);
            return NULL;
        }
        PyObject *col = PyTuple_Pack(3, validity, data, offsets);
        Py_DECREF(validity);
        Py_DECREF(data);
        Py_DECREF(offsets);
        if (!col || PyList_SetItem(cols, i, col)) { /* SetItem takes the reference */
            Py_DECREF(cols);
            return NULL;
        }
    }
    PyObject *out = Py_BuildValue("(nN)", n, cols);
    if (out && start_batch(self)) {
        Py_DECREF(out);
        return NULL;
    }
    return out;
}

/* ---- value decoding ------------------------------------------------------------------ */

static int fail(Parser *self, const char *what) {
    if (!self->protocol_error)
        self->protocol_error = PyUnicode_FromFormat("malformed row %lld from the server: %s", self->total_rows + 1, what);
    return -1;
}

/* A length-encoded integer at p[*pos]; -1 when it runs past `len`. */
static int lenenc(const uint8_t *p, size_t len, size_t *pos, uint64_t *out) {
    if (*pos >= len)
        return -1;
    uint8_t b = p[*pos];
    size_t n;
    if (b < 0xFB) {
        *out = b;
        *pos += 1;
        return 0;
    }
    if (b == 0xFC)
        n = 2;
    else if (b == 0xFD)
        n = 3;
    else if (b == 0xFE)
        n = 8;
    else
        return -1;
    if (*pos + 1 + n > len)
        return -1;
    uint64_t v = 0;
    for (size_t k = 0; k < n; k++)
        v |= (uint64_t)p[*pos + 1 + k] << (8 * k);
    *out = v;
    *pos += 1 + n;
    return 0;
}

/* Days from 1970-01-01 to a proleptic Gregorian date (era arithmetic on 400-year cycles). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static unsigned days_in_month(unsigned y, unsigned m) {
    static const unsigned dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return dim[m - 1];
}

static void set_valid(col_t *c, Py_ssize_t row) { c->validity.p[row >> 3] |= (uint8_t)(1u << (row & 7)); }

static void put_null(col_t *c, Py_ssize_t row) {
    c->nulls++;
    if (c->kind == K_BYTES) {
        memcpy(c->offsets.p + (size_t)(row + 1) * 4, c->offsets.p + (size_t)row * 4, 4);
    } else if (c->width) {
        memset(c->data.p + (size_t)row * c->width, 0, c->width);
    }
}

/* A date with no calendar value: NULL under `zero_dates: "null"` when zero or partial, else an error. */
static int bad_date(Parser *self, int i, Py_ssize_t row, int zero, unsigned y, unsigned mo, unsigned d, unsigned h,
                    unsigned mi, unsigned s, unsigned us, int with_time) {
    col_t *c = &self->cols[i];
    if (zero && c->zero_null) {
        c->zero_dates++;
        put_null(c, row);
        return 0;
    }
    char text[40];
    if (!with_time)
        snprintf(text, sizeof text, "%04u-%02u-%02u", y, mo, d);
    else if (us)
        snprintf(text, sizeof text, "%04u-%02u-%02u %02u:%02u:%02u.%06u", y, mo, d, h, mi, s, us);
    else
        snprintf(text, sizeof text, "%04u-%02u-%02u %02u:%02u:%02u", y, mo, d, h, mi, s);
    Py_XDECREF(self->bad_date);
    self->bad_date = Py_BuildValue("(is)", i, text);
    return -1;
}

static int decode_date(Parser *self, int i, Py_ssize_t row, const uint8_t *p, size_t len, size_t *pos) {
    col_t *c = &self->cols[i];
    if (*pos >= len)
        return fail(self, "truncated date");
    unsigned n = p[*pos];
    if (*pos + 1 + n > len || (n != 0 && n != 4 && n != 7 && n != 11))
        return fail(self, "bad date length");
    const uint8_t *v = p + *pos + 1;
    *pos += 1 + n;
    unsigned y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, us = 0;
    if (n >= 4) {
        y = v[0] | (v[1] << 8);
        mo = v[2];
        d = v[3];
    }
    if (n >= 7) {
        h = v[4];
        mi = v[5];
        s = v[6];
    }
    if (n == 11)
        us = v[7] | (v[8] << 8) | (v[9] << 16) | ((unsigned)v[10] << 24);
    int with_time = c->kind == K_DATETIME;
    if (mo == 0 || d == 0)
        return bad_date(self, i, row, 1, y, mo, d, h, mi, s, us, with_time);
    if (mo > 12 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 59 || us > 999999)
        return bad_date(self, i, row, 0, y, mo, d, h, mi, s, us, with_time);
    int64_t days = days_from_civil(y, mo, d);
    set_valid(c, row);
    if (c->kind == K_DATE) {
        int32_t v32 = (int32_t)days;
        memcpy(c->data.p + (size_t)row * 4, &v32, 4);
    } else {
        int64_t t = ((days * 24 + h) * 60 + mi) * 60 + s;
        t = t * 1000000 + us;
        memcpy(c->data.p + (size_t)row * 8, &t, 8);
    }
    return 0;
}

static int decode_time(Parser *self, col_t *c, Py_ssize_t row, const uint8_t *p, size_t len, size_t *pos) {
    if (*pos >= len)
        return fail(self, "truncated time");
    unsigned n = p[*pos];
    if (*pos + 1 + n > len || (n != 0 && n != 8 && n != 12))
        return fail(self, "bad time length");
    const uint8_t *v = p + *pos + 1;
    *pos += 1 + n;
    int64_t t = 0;
    if (n >= 8) {
        uint32_t days = v[1] | (v[2] << 8) | (v[3] << 16) | ((uint32_t)v[4] << 24);
        uint32_t us = n == 12 ? v[8] | (v[9] << 8) | (v[10] << 16) | ((uint32_t)v[11] << 24) : 0;
        /* TIME spans -838:59:59.999999 to 838:59:59.999999: at most 34 days. */
        if (days > 34 || v[5] > 23 || v[6] > 59 || v[7] > 59 || us > 999999)
            return fail(self, "TIME value out of range");
        t = (((int64_t)days * 24 + v[5]) * 60 + v[6]) * 60 + v[7];
        t = t * 1000000 + us;
        if (v[0])
            t = -t;
    }
    set_valid(c, row);
    memcpy(c->data.p + (size_t)row * 8, &t, 8);
    return 0;
}

/* "-123.4500" -> unscaled 128-bit integer at the column's scale, checked against its precision. */
static int decode_decimal(Parser *self, col_t *c, Py_ssize_t row, const uint8_t *s, size_t n) {
    size_t k = 0;
    int neg = 0, digits = 0, frac = -1;
    unsigned __int128 v = 0;
    if (k < n && (s[k] == '-' || s[k] == '+'))
        neg = s[k++] == '-';
    for (; k < n; k++) {
        uint8_t ch = s[k];
        if (ch == '.' && frac < 0) {
            frac = 0;
            continue;
        }
        if (ch < '0' || ch > '9')
            return fail(self, "DECIMAL value is not a number");
        if (frac >= 0)
            frac++;
        if (v || ch != '0')
            digits++;
        if (digits > 38)
            goto out_of_range;
        v = v * 10 + (ch - '0');
    }
    if (frac < 0)
        frac = 0;
    if (frac > c->scale)
        return fail(self, "DECIMAL value has more fractional digits than its column");
    for (; frac < c->scale; frac++) {
        v *= 10;
        if (++digits > 38)
            goto out_of_range;
    }
    {
        unsigned __int128 limit = 1;
        for (int p = 0; p < c->precision; p++)
            limit *= 10;
        if (v >= limit)
            goto out_of_range;
    }
    __int128 sv = neg ? -(__int128)v : (__int128)v;
    set_valid(c, row);
    memcpy(c->data.p + (size_t)row * 16, &sv, 16);
    return 0;
out_of_range:
    if (!self->protocol_error) {
        char shown[81];
        size_t k = n < 80 ? n : 80;
        memcpy(shown, s, k);
        shown[k] = 0;
        self->protocol_error = PyUnicode_FromFormat("a value has more digits than DECIMAL(%d,%d) holds: %s",
                                                    c->precision, c->scale, shown);
    }
    return -1;
}

static int decode_row(Parser *self, const uint8_t *p, size_t len) {
    Py_ssize_t row = self->rows;
    size_t nullmap = ((size_t)self->ncols + 9) / 8;
    size_t pos = 1 + nullmap;
    if (pos > len)
        return fail(self, "truncated NULL bitmap");
    for (int i = 0; i < self->ncols; i++) {
        col_t *c = &self->cols[i];
        unsigned bit = (unsigned)i + 2;
        if (p[1 + (bit >> 3)] & (1u << (bit & 7)) || c->kind == K_NULL) {
            put_null(c, row);
            continue;
        }
        switch (c->kind) {
        case K_FIX1:
        case K_FIX2:
        case K_FIX4:
        case K_FIX8:
            if (pos + c->width > len)
                return fail(self, "truncated number");
            memcpy(c->data.p + (size_t)row * c->width, p + pos, c->width);
            pos += c->width;
            set_valid(c, row);
            break;
        case K_BOOL:
            if (pos + 1 > len)
                return fail(self, "truncated number");
            if (p[pos++])
                c->data.p[row >> 3] |= (uint8_t)(1u << (row & 7));
            set_valid(c, row);
            break;
        case K_DATE:
        case K_DATETIME:
            if (decode_date(self, i, row, p, len, &pos))
                return -1;
            break;
        case K_TIME:
            if (decode_time(self, c, row, p, len, &pos))
                return -1;
            break;
        default: { /* length-encoded values */
            uint64_t n;
            if (lenenc(p, len, &pos, &n) || pos + n > len)
                return fail(self, "truncated value");
            const uint8_t *s = p + pos;
            pos += n;
            if (c->kind == K_BYTES) {
                if (buf_reserve(&c->data, n))
                    return -1;
                memcpy(c->data.p + c->data.len, s, n);
                c->data.len += n;
                int32_t end = (int32_t)c->data.len;
                memcpy(c->offsets.p + (size_t)(row + 1) * 4, &end, 4);
                set_valid(c, row);
            } else if (c->kind == K_DEC128) {
                if (decode_decimal(self, c, row, s, n))
                    return -1;
            } else if (c->kind == K_BITBOOL) {
                for (uint64_t k = 0; k < n; k++)
                    if (s[k]) {
                        c->data.p[row >> 3] |= (uint8_t)(1u << (row & 7));
                        break;
                    }
                set_valid(c, row);
            } else if (c->kind == K_BIT) {
                if (n > 8)
                    return fail(self, "BIT value longer than 8 bytes");
                uint64_t v = 0;
                for (uint64_t k = 0; k < n; k++)
                    v = (v << 8) | s[k];
                memcpy(c->data.p + (size_t)row * 8, &v, 8);
                set_valid(c, row);
            } else {
                return fail(self, "unknown column kind");
            }
        }
        }
    }
    if (pos != len)
        return fail(self, "row packet longer than its columns");
    self->rows++;
    self->total_rows++;
    return 0;
}

/* One whole payload: a row, the end of the result, or the server's error. 1 = a batch is full. */
static int handle_payload(Parser *self, const uint8_t *p, size_t len) {
    if (len == 0)
        return fail(self, "empty packet");
    if (p[0] == 0xFE && len < 0xFFFFFF) { /* EOF (or OK with CLIENT_DEPRECATE_EOF): the result ends */
        self->done = 1;
        return 0;
    }
    if (p[0] == 0xFF) {
        Py_XDECREF(self->error_packet);
        self->error_packet = PyBytes_FromStringAndSize((const char *)p, (Py_ssize_t)len);
        return -1;
    }
    if (p[0] != 0x00)
        return fail(self, "not a binary row packet");
    if (decode_row(self, p, len))
        return -1;
    if (self->rows >= self->batch_size)
        return 1;
    for (int i = 0; i < self->ncols; i++)
        if (self->cols[i].kind == K_BYTES && self->cols[i].data.len >= MAX_VAR_BYTES)
            return 1;
    return 0;
}

/* Split `data` into packets; return how many bytes were whole packets. Appends full batches to `out`. */
static Py_ssize_t parse(Parser *self, const uint8_t *data, size_t len, PyObject *out) {
    size_t pos = 0;
    while (!self->done && len - pos >= 4) {
        size_t plen = data[pos] | (data[pos + 1] << 8) | ((size_t)data[pos + 2] << 16);
        if (len - pos - 4 < plen)
            break;
        const uint8_t *payload = data + pos + 4;
        pos += 4 + plen;
        int r;
        if (plen == MAX_PACKET || self->in_big) {
            /* A payload of 16 MiB or more comes as several packets: join them first. */
            if (!self->in_big)
                self->big.len = 0;
            if (buf_reserve(&self->big, plen))
                return -1;
            memcpy(self->big.p + self->big.len, payload, plen);
            self->big.len += plen;
            self->in_big = plen == MAX_PACKET;
            if (self->in_big)
                continue;
            r = handle_payload(self, self->big.p, self->big.len);
        } else {
            r = handle_payload(self, payload, plen);
        }
        if (r < 0)
            return -1;
        if (r == 1) {
            PyObject *batch = take_batch(self);
            if (!batch || PyList_Append(out, batch)) {
                Py_XDECREF(batch);
                return -1;
            }
            Py_DECREF(batch);
        }
    }
    return (Py_ssize_t)pos;
}

/* ---- the Python type ----------------------------------------------------------------- */

static void Parser_dealloc(Parser *self) {
    for (int i = 0; i < self->ncols; i++) {
        buf_free(&self->cols[i].validity);
        buf_free(&self->cols[i].data);
        buf_free(&self->cols[i].offsets);
    }
    PyMem_Free(self->cols);
    buf_free(&self->carry);
    buf_free(&self->big);
    Py_XDECREF(self->error_packet);
    Py_XDECREF(self->bad_date);
    Py_XDECREF(self->protocol_error);
    PyTypeObject *type = Py_TYPE((PyObject *)self);
    freefunc tp_free = (freefunc)PyType_GetSlot(type, Py_tp_free);
    tp_free(self);
    Py_DECREF(type); /* instances of a heap type hold a reference to it */
}

static int Parser_init(Parser *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"kinds", "batch_size", NULL};
    PyObject *kinds;
    Py_ssize_t batch_size;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "On", kwlist, &kinds, &batch_size))
        return -1;
    if (batch_size < 1) {
        PyErr_SetString(PyExc_ValueError, "batch_size must be at least 1");
        return -1;
    }
    Py_ssize_t n = PySequence_Size(kinds);
    if (n < 0)
        return -1;
    if (self->cols) {
        PyErr_SetString(PyExc_RuntimeError, "RowParser is already initialised");
        return -1;
    }
    self->cols = PyMem_Calloc(n ? (size_t)n : 1, sizeof(col_t));
    if (!self->cols) {
        PyErr_NoMemory();
        return -1;
    }
    self->ncols = (int)n;
    for (Py_ssize_t i = 0; i < n; i++) {
        col_t *c = &self->cols[i];
        PyObject *item = PySequence_GetItem(kinds, i);
        if (!item)
            return -1;
        int ok = PyArg_ParseTuple(item, "iiip", &c->kind, &c->scale, &c->precision, &c->zero_null);
        Py_DECREF(item);
        if (!ok)
            return -1;
        if (c->kind < K_NULL || c->kind > K_BITBOOL || (c->kind == K_DEC128 && (c->precision < 1 || c->precision > 38 ||
                                                                              c->scale < 0 || c->scale > c->precision))) {
            PyErr_Format(PyExc_ValueError, "column %zd: bad kind %d (scale %d, precision %d)", i, c->kind, c->scale,
                         c->precision);
            return -1;
        }
        c->width = WIDTH[c->kind];
    }
    self->batch_size = batch_size;
    return start_batch(self);
}

PyDoc_STRVAR(feed_doc, "feed(data) -> list of (rows, columns) batches completed by these bytes.\n\n"
                       "After it returns, `done`, `error_packet`, `bad_date` and `protocol_error` tell whether the "
                       "result ended or failed; a failed parser takes no more bytes.");

static PyObject *Parser_feed(Parser *self, PyObject *arg) {
    Py_buffer view;
    if (self->error_packet || self->bad_date || self->protocol_error) {
        PyErr_SetString(PyExc_RuntimeError, "the result already failed");
        return NULL;
    }
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE))
        return NULL;
    PyObject *out = PyList_New(0);
    if (!out) {
        PyBuffer_Release(&view);
        return NULL;
    }
    const uint8_t *data = view.buf;
    size_t len = (size_t)view.len;
    Py_ssize_t used;
    if (self->carry.len) {
        /* Finish the packet begun in an earlier chunk, then go on in place. */
        size_t have = self->carry.len;
        size_t need = 4;
        if (have >= 4)
            need = 4 + (self->carry.p[0] | (self->carry.p[1] << 8) | ((size_t)self->carry.p[2] << 16));
        else if (have + len >= 4) {
            uint8_t hdr[4];
            memcpy(hdr, self->carry.p, have);
            memcpy(hdr + have, data, 4 - have);
            need = 4 + (hdr[0] | (hdr[1] << 8) | ((size_t)hdr[2] << 16));
        }
        size_t take = need > have ? need - have : 0;
        if (take > len)
            take = len;
        if (buf_reserve(&self->carry, take))
            goto error;
        memcpy(self->carry.p + have, data, take);
        self->carry.len += take;
        data += take;
        len -= take;
        if (self->carry.len < need) {
            PyBuffer_Release(&view);
            return out;
        }
        used = parse(self, self->carry.p, self->carry.len, out);
        if (used < 0)
            goto failed;
        self->carry.len = 0;
    }
    used = parse(self, data, len, out);
    if (used < 0)
        goto failed;
    if (!self->done && (size_t)used < len) {
        self->carry.len = 0;
        if (buf_reserve(&self->carry, len - (size_t)used))
            goto error;
        memcpy(self->carry.p, data + used, len - (size_t)used);
        self->carry.len = len - (size_t)used;
    }
    PyBuffer_Release(&view);
    return out;
failed:
    if (PyErr_Occurred())
        goto error;
    PyBuffer_Release(&view);
    return out; /* the failure is on the parser's attributes */
error:
    PyBuffer_Release(&view);
    Py_DECREF(out);
    return NULL;
}

PyDoc_STRVAR(finish_doc, "finish() -> the last, partly filled (rows, columns) batch, or None when it is empty.");

static PyObject *Parser_finish(Parser *self, PyObject *Py_UNUSED(ignored)) {
    if (self->rows == 0)
        Py_RETURN_NONE;
    return take_batch(self);
}

static PyObject *Parser_get_done(Parser *self, void *Py_UNUSED(closure)) { return PyBool_FromLong(self->done); }
static PyObject *Parser_get_rows(Parser *self, void *Py_UNUSED(closure)) {
    return PyLong_FromLongLong(self->total_rows);
}
static PyObject *Parser_get_error_packet(Parser *self, void *Py_UNUSED(closure)) {
    return Py_NewRef(self->error_packet ? self->error_packet : Py_None);
}
static PyObject *Parser_get_bad_date(Parser *self, void *Py_UNUSED(closure)) {
    return Py_NewRef(self->bad_date ? self->bad_date : Py_None);
}
static PyObject *Parser_get_protocol_error(Parser *self, void *Py_UNUSED(closure)) {
    return Py_NewRef(self->protocol_error ? self->protocol_error : Py_None);
}
static PyObject *Parser_get_zero_dates(Parser *self, void *Py_UNUSED(closure)) {
    PyObject *out = PyList_New(self->ncols);
    if (!out)
        return NULL;
    for (int i = 0; i < self->ncols; i++) {
        PyObject *v = PyLong_FromLongLong(self->cols[i].zero_dates);
        if (!v) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SetItem(out, i, v);
    }
    return out;
}

static PyMethodDef Parser_methods[] = {
    {"feed", (PyCFunction)Parser_feed, METH_O, feed_doc},
    {"finish", (PyCFunction)Parser_finish, METH_NOARGS, finish_doc},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Parser_getset[] = {
    {"done", (getter)Parser_get_done, NULL, "whether the result's end (EOF) has been read", NULL},
    {"rows", (getter)Parser_get_rows, NULL, "rows decoded so far", NULL},
    {"error_packet", (getter)Parser_get_error_packet, NULL, "the server's ERR packet payload, or None", NULL},
    {"bad_date", (getter)Parser_get_bad_date, NULL, "(column index, text) of a date with no calendar value", NULL},
    {"protocol_error", (getter)Parser_get_protocol_error, NULL, "what was wrong with the bytes, or None", NULL},
    {"zero_dates", (getter)Parser_get_zero_dates, NULL, "per column, zero/partial dates read as NULL", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Parser_slots[] = {
    {Py_tp_doc, "RowParser(kinds, batch_size): binary-protocol result rows to Arrow column buffers.\n\n"
                "kinds: one (kind, scale, precision, zero_null) per column, kind a K_* constant."},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_init, Parser_init},
    {Py_tp_dealloc, Parser_dealloc},
    {Py_tp_methods, Parser_methods},
    {Py_tp_getset, Parser_getset},
    {0, NULL},
};

static PyType_Spec Parser_spec = {
    .name = "osiris.drivers.sql._mysql_rows.RowParser",
    .basicsize = sizeof(Parser),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = Parser_slots,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, .m_name = "osiris.drivers.sql._mysql_rows",
    .m_doc = "MySQL binary-protocol result rows to Arrow column buffers.", .m_size = -1,
};

PyMODINIT_FUNC PyInit__mysql_rows(void) {
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    PyObject *type = PyType_FromSpec(&Parser_spec);
    if (!type || PyModule_AddObjectRef(m, "RowParser", type) < 0) {
        Py_XDECREF(type);
        Py_DECREF(m);
        return NULL;
    }
    Py_DECREF(type);
    static const struct {
        const char *name;
        int value;
    } kinds[] = {{"K_NULL", K_NULL}, {"K_FIX1", K_FIX1},   {"K_FIX2", K_FIX2},         {"K_FIX4", K_FIX4},
                 {"K_FIX8", K_FIX8}, {"K_DEC128", K_DEC128}, {"K_DATE", K_DATE},       {"K_DATETIME", K_DATETIME},
                 {"K_TIME", K_TIME}, {"K_BIT", K_BIT},     {"K_BYTES", K_BYTES},       {"K_BOOL", K_BOOL},
                 {"K_BITBOOL", K_BITBOOL}};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
        if (PyModule_AddIntConstant(m, kinds[k].name, kinds[k].value) < 0) {
            Py_DECREF(m);
            return NULL;
        }
    return m;
}
