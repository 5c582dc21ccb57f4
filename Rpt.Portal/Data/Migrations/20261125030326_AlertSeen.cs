using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Rpt.Portal.Data.Migrations
{
    /// <inheritdoc />
    public partial class AlertSeen : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "alert_seen",
                columns: table => new
                {
                    user_id = table.Column<string>(type: "TEXT", maxLength: 450, nullable: false),
                    seen_at = table.Column<long>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_alert_seen", x => x.user_id);
                });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "alert_seen");
        }
    }
}
