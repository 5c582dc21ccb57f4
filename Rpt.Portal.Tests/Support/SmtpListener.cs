using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using MimeKit;
using SmtpServer;
using SmtpServer.ComponentModel;
using SmtpServer.Protocol;
using SmtpServer.Storage;

namespace Rpt.Portal.Tests.Support;

/// <summary>A real SMTP server on loopback, in process: every message MailKit delivers to it is kept, parsed.</summary>
public sealed class SmtpListener : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _running;

    public ConcurrentQueue<MimeMessage> Messages { get; } = new();

    /// <summary>How many of the next messages the server refuses (554), as a full or failing mail server would.</summary>
    public int RefuseNext
    {
        get => _refuse.Value;
        set => _refuse.Value = value;
    }

    private readonly StrongBox<int> _refuse = new(0);
    public int Port { get; }

    public SmtpListener()
    {
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            Port = ((IPEndPoint)probe.LocalEndpoint).Port;
            probe.Stop();
        }
        var options = new SmtpServerOptionsBuilder().ServerName("localhost")
            .Endpoint(e => e.Endpoint(new IPEndPoint(IPAddress.Loopback, Port)).IsSecure(false)).Build();
        var services = new SmtpServer.ComponentModel.ServiceProvider();
        services.Add(new Store(Messages, _refuse));
        _running = new SmtpServer.SmtpServer(options, services).StartAsync(_stop.Token);
    }

    /// <summary>Settings that send the portal's mail here.</summary>
    public Dictionary<string, string?> Settings() => new() { ["Rpt:Email:SmtpHost"] = "127.0.0.1", ["Rpt:Email:SmtpPort"] = Port.ToString() };

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try { await _running; } catch (OperationCanceledException) { }
    }

    private sealed class Store(ConcurrentQueue<MimeMessage> messages, StrongBox<int> refuse) : MessageStore
    {
        public override async Task<SmtpResponse> SaveAsync(ISessionContext context, IMessageTransaction transaction, ReadOnlySequence<byte> buffer,
            CancellationToken cancellationToken)
        {
            if (Interlocked.Decrement(ref refuse.Value) >= 0) return SmtpResponse.TransactionFailed;
            Interlocked.Exchange(ref refuse.Value, 0);
            await using var stream = new MemoryStream(buffer.ToArray());
            messages.Enqueue(await MimeMessage.LoadAsync(stream, cancellationToken));
            return SmtpResponse.Ok;
        }
    }
}
