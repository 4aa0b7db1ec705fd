# Build a static latchkey binary (pure-Go SQLite, no cgo) and ship it on a distroless base.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/latchkey/latchkey/app.version=${VERSION}" -o /out/latchkey ./cmd/latchkey
# The data directory: the image has no shell to create it at run time, and a directory WORKDIR creates belongs
# to root, where the non-root user cannot write the SQLite file.
RUN mkdir -m 0700 /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/latchkey /usr/local/bin/latchkey
# Owned by the image's non-root user (nonroot, 65532). A named volume mounted here starts as a copy of it, owner
# included; a bind-mounted host directory must be writable by uid 65532 itself.
COPY --from=build --chown=65532:65532 /out/data /var/lib/latchkey
USER 65532:65532
WORKDIR /var/lib/latchkey
# SQLite by default: the database, and the system secret generated beside it unless LATCHKEY_SECRET is set,
# live in the volume. Set LATCHKEY_DATABASE_URL=postgres://... to use PostgreSQL (docker-compose.yml).
ENV LATCHKEY_DATABASE_URL=sqlite:///var/lib/latchkey/latchkey.db \
    LATCHKEY_ADDR=:8080
VOLUME ["/var/lib/latchkey"]
EXPOSE 8080
# No curl in a distroless image: the binary asks its own /healthz (at LATCHKEY_ADDR over loopback).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["/usr/local/bin/latchkey", "healthcheck", "--timeout", "3s"]
ENTRYPOINT ["/usr/local/bin/latchkey"]
CMD ["serve"]
