using System.Net;
using System.Net.Sockets;

namespace Rpt.Portal.Tests.Support;

/// <summary>
/// A TCP relay on loopback between the portal and its database, that the test can cut as a network or a dead primary
/// would: <see cref="Cut"/> resets every relayed connection and refuses new ones (each is accepted and closed at once),
/// <see cref="Restore"/> relays again.
/// </summary>
public sealed class TcpRelay : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly int _targetPort;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<TcpClient> _live = [];
    private readonly Task _accepting;
    private volatile bool _open = true;

    public TcpRelay(int targetPort)
    {
        _targetPort = targetPort;
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _accepting = AcceptAsync();
    }

    public int Port { get; }

    public void Cut()
    {
        _open = false;
        lock (_live)
        {
            foreach (var c in _live)
            {
                try
                {
                    if (c.Client is { } socket) socket.LingerState = new LingerOption(true, 0); // a reset, as a dead host's network gives
                    c.Close();
                }
                catch (Exception e) when (e is ObjectDisposedException or SocketException) { }
            }
            _live.Clear();
        }
    }

    public void Restore() => _open = true;

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await _listener.AcceptTcpClientAsync(_stop.Token); }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { return; }
            if (!_open)
            {
                client.Client.LingerState = new LingerOption(true, 0);
                client.Close();
                continue;
            }
            _ = RelayAsync(client);
        }
    }

    private async Task RelayAsync(TcpClient client)
    {
        var server = new TcpClient();
        try
        {
            await server.ConnectAsync(IPAddress.Loopback, _targetPort, _stop.Token);
            lock (_live) { _live.Add(client); _live.Add(server); }
            var a = client.GetStream();
            var b = server.GetStream();
            await Task.WhenAny(a.CopyToAsync(b, _stop.Token), b.CopyToAsync(a, _stop.Token));
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException) { }
        finally
        {
            client.Close();
            server.Close();
            lock (_live) { _live.Remove(client); _live.Remove(server); }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        Cut();
        try { await _accepting; } catch (OperationCanceledException) { }
        _stop.Dispose();
    }
}
